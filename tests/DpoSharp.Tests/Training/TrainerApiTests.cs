using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Tests.Cli.Commands;
using DpoSharp.Tokenization;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp.Modules;

namespace DpoSharp.Tests.Training;

public class TrainerApiTests
{
    [Fact]
    public void ReadmeSampleTrainsFromRawExamplesAndSavesAnHfDirectory()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, dataset) = CliTrainTests.WriteTinyJob(dir.Path);
        var output = Path.Combine(dir.Path, "dpo");
        var logged = new List<TrainerLogEntry>();

        // The README's sample, with the tiny model and data.
        using var model = ModelLoader.Load(modelDir);
        var tokenizer = HfTokenizer.Load(modelDir);
        var train = PreferenceDatasetLoader.Load(dataset);
        var args = new DpoOptions { Beta = 0.1, LearningRate = 1e-3, PerDeviceTrainBatchSize = 4, OutputDir = output, MaxSteps = 4, LoggingSteps = 2, ReportTo = [ReportTarget.Jsonl] };
        using var trainer = new DpoTrainer(model, refModel: null, args, train, tokenizer) { TokenizerFilesSource = modelDir };
        trainer.Logged += logged.Add;
        trainer.Train();

        Assert.Equal(16, trainer.TrainTokenization!.Stats.Kept);
        Assert.Equal([2, 4], logged.Select(e => e.Step));
        Assert.True(File.Exists(Path.Combine(output, "tokenizer.json")));
        using var reloaded = ModelLoader.Load(output);
        Assert.Equal(model.Config.VocabSize, reloaded.Config.VocabSize);
    }

    [Fact]
    public void TokenizerFilesFollowAModelLoadedFromAFolderByDefault()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, dataset) = CliTrainTests.WriteTinyJob(dir.Path, rows: 4);
        var output = Path.Combine(dir.Path, "dpo");

        // TokenizerFilesSource is not set: the folder the model was loaded from is the default.
        using (var model = ModelLoader.Load(modelDir))
        {
            var args = new DpoOptions { OutputDir = output, MaxSteps = 1, PerDeviceTrainBatchSize = 4, LearningRate = 1e-3, ReportTo = [ReportTarget.None] };
            using var trainer = new DpoTrainer(model, refModel: null, args, PreferenceDatasetLoader.Load(dataset), HfTokenizer.Load(modelDir));
            Assert.Equal(Path.GetFullPath(modelDir), trainer.TokenizerFilesSource);
            trainer.Train();
        }

        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
        {
            Assert.Equal(File.ReadAllText(Path.Combine(modelDir, file)), File.ReadAllText(Path.Combine(output, file)));
        }

        var tokenizer = HfTokenizer.Load(output);
        Assert.NotEmpty(tokenizer.Encode("1+2="));
        var (rc, stdout, err) = CliRunner.Run("generate", "--model", output, "--prompt", "1+2=", "--max-new-tokens", "3", "--device", "cpu");
        Assert.True(rc == 0, err + stdout);
        Assert.DoesNotContain("error", err);
    }

    [Fact]
    public void AnEmptyTokenizerFilesSourceCopiesNone()
    {
        using var dir = TestPaths.CreateTempDir();
        var (modelDir, dataset) = CliTrainTests.WriteTinyJob(dir.Path, rows: 4);
        var output = Path.Combine(dir.Path, "dpo");
        using var model = ModelLoader.Load(modelDir);
        var args = new DpoOptions { OutputDir = output, MaxSteps = 1, PerDeviceTrainBatchSize = 4, LearningRate = 1e-3, ReportTo = [ReportTarget.None] };
        using var trainer = new DpoTrainer(model, refModel: null, args, PreferenceDatasetLoader.Load(dataset), HfTokenizer.Load(modelDir)) { TokenizerFilesSource = "" };
        Assert.Null(trainer.TokenizerFilesSource);
        trainer.Train();
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(output, "tokenizer.json")));
    }

    [Fact]
    public void RanksTrainOnDisjointShardsAndOnlyRankZeroWrites()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(12);
        var synced = new List<int>();
        var args = new DpoOptions { OutputDir = Path.Combine(dir.Path, "rank1"), MaxSteps = 2, PerDeviceTrainBatchSize = 3, LoggingSteps = 1, SaveSteps = 1, LearningRate = 1e-3 };
        using var model = new TinyCausalLM(seed: 1);
        using var reference = model.Clone();
        using var trainer = new DpoTrainer(model, reference, args, data, padTokenId: 0)
        {
            Rank = 1,
            WorldSize = 2,
            GradientSynchronizer = new CountingSynchronizer(synced),
        };
        var rank1 = trainer.Sampler.EpochBatches(0).SelectMany(b => b).ToHashSet();
        trainer.Rank = 0;
        var rank0 = trainer.Sampler.EpochBatches(0).SelectMany(b => b).ToHashSet();
        trainer.Rank = 1;
        Assert.Empty(rank0.Intersect(rank1));
        Assert.Equal(12, rank0.Count + rank1.Count);

        trainer.Train();
        int n = model.Module.parameters().Count();
        Assert.Equal([n, n], synced);                      // once per optimizer step, with every parameter's gradient
        Assert.False(Directory.Exists(args.OutputDir));   // rank 1 writes nothing
        Assert.Equal(2, trainer.State.LogHistory.Count);  // but still logs (events on every rank)
    }

    [Fact]
    public void EvalStrategyEpochEvaluatesAtEveryEpochEnd()
    {
        using var dir = TestPaths.CreateTempDir();
        var args = new DpoOptions { OutputDir = dir.Path, NumTrainEpochs = 2, PerDeviceTrainBatchSize = 4, LoggingSteps = 100, EvalStrategy = EvalStrategy.Epoch, LearningRate = 1e-3, ReportTo = [ReportTarget.None] };
        using var model = new TinyCausalLM(seed: 1);
        using var reference = model.Clone();
        using var trainer = new DpoTrainer(model, reference, args, TinyData.Pairs(10), padTokenId: 0, evalDataset: TinyData.Pairs(5, seed: 9));
        trainer.Train();
        Assert.Equal(3, trainer.StepsPerEpoch);
        var evalSteps = trainer.State.LogHistory.Where(e => e.Metrics.ContainsKey("eval_loss")).Select(e => e.Step).ToArray();
        Assert.Equal([3, 6], evalSteps);
        Assert.False(File.Exists(Path.Combine(dir.Path, DpoTrainer.MetricsFileName)));  // report_to none
    }

    [Fact]
    public void ACustomReferenceProviderReplacesTheFrozenCopy()
    {
        using var dir = TestPaths.CreateTempDir();
        using var model = new TinyCausalLM(seed: 1);
        using var frozen = model.Clone();
        var args = new DpoOptions { OutputDir = dir.Path, MaxSteps = 3, PerDeviceTrainBatchSize = 2, GradientAccumulationSteps = 2, LearningRate = 1e-3, ReportTo = [ReportTarget.None] };

        // TinyCausalLM cannot be copied by ModelLoader: without a reference the trainer says so.
        using (var other = model.Clone())
        using (var noRef = new DpoTrainer(other, refModel: null, args, TinyData.Pairs(8), padTokenId: 0))
        {
            var e = Assert.Throws<DpoSharpException>(() => noRef.Train());
            Assert.Contains("--ref-model", e.Message);
        }

        using var provider = new CountingReference(new FrozenModelReference(frozen));
        using var trainer = new DpoTrainer(model, refModel: null, args, TinyData.Pairs(8), padTokenId: 0) { ReferenceLogProbs = provider };
        trainer.Train();
        Assert.Equal(6, provider.Calls);              // 3 steps × 2 micro-batches
        Assert.Same(provider, trainer.TrainReference);
    }

    private sealed class CountingReference(IReferenceLogProbs inner) : IReferenceLogProbs
    {
        public int Calls { get; private set; }

        public string Kind => "counting";

        public (TorchSharp.torch.Tensor Chosen, TorchSharp.torch.Tensor Rejected)? Compute(PreferenceBatch batch, TorchSharp.torch.Device device)
        {
            Calls++;
            return inner.Compute(batch, device);
        }

        public void Dispose() => inner.Dispose();
    }

    private sealed class CountingSynchronizer(List<int> calls) : IGradientSynchronizer
    {
        public void Synchronize(IReadOnlyList<Parameter> parameters) => calls.Add(parameters.Count(p => p.grad is not null) == parameters.Count ? parameters.Count : -1);
    }
}
