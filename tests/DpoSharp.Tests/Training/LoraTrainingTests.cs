using System.Text.Json.Nodes;
using DpoSharp.Data;
using DpoSharp.IO;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Modules;
using DpoSharp.Tests.Models.Lora;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using DpoSharp.Training.Metrics;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Training;

/// <summary>LoRA DPO runs: the adapters-disabled reference, a frozen base, PEFT output, adapter-only checkpoints and resume.</summary>
[Collection(nameof(TorchRngCollection))]
public class LoraTrainingTests
{
    private static List<TokenizedPair> Pairs(int count, int seed) => TinyData.Pairs(count, vocab: TinyCheckpoints.DefaultVocabSize, seed: seed);

    private static Dictionary<string, byte[]> BaseBytes(ICausalLM model) => model.Module.named_parameters()
        .Where(p => !LoraAdapter.IsAdapterParameter(p.name))
        .ToDictionary(p => p.name, p => TensorBits.Bytes(p.parameter));

    [Fact]
    public void LoraDpoRaisesAccuraciesKeepsTheBaseBitIdenticalAndSavesAPeftAdapterThatMerges()
    {
        using var tmp = TestPaths.CreateTempDir();
        var baseDir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "base"), "llama", seed: 3);
        var output = Path.Combine(tmp.Path, "out");
        using var model = ModelLoader.Load(baseDir);
        model.Inject(new LoraOptions { TargetModules = [LoraOptions.AllLinear], BaseModelNameOrPath = baseDir }, seed: 1);
        var baseBefore = BaseBytes(model);
        var args = new DpoOptions
        {
            OutputDir = output,
            LearningRate = 2e-2,
            PerDeviceTrainBatchSize = 4,
            PerDeviceEvalBatchSize = 8,
            MaxSteps = 16,
            LoggingSteps = 4,
            EvalStrategy = EvalStrategy.Steps,
            EvalSteps = 16,
            SaveSteps = 1000,
            Beta = 0.5,
            ReportTo = [ReportTarget.Jsonl],
            Seed = 5,
        };
        using var trainer = new DpoTrainer(model, refModel: null, args, Pairs(32, seed: 1), padTokenId: 0, evalDataset: Pairs(16, seed: 2));
        trainer.TokenizerFilesSource = baseDir;
        using var reference = new AdaptersDisabledReference(model);
        trainer.ReferenceLogProbs = reference;
        var before = trainer.Evaluate();
        trainer.Train();
        Assert.Same(reference, trainer.TrainReference);

        var train0 = trainer.State.LogHistory.First(e => e.Metrics.ContainsKey("loss")).Metrics;
        var trainN = trainer.State.LogHistory.Last(e => e.Metrics.ContainsKey("loss")).Metrics;
        var after = trainer.State.LogHistory.Last(e => e.Metrics.ContainsKey("eval_loss")).Metrics;
        Assert.Equal(0.0, before["eval_rewards/accuracies"]);        // policy == reference at the start
        Assert.Equal(Math.Log(2), before["eval_loss"], 5);
        Assert.True(trainN["rewards/accuracies"] > train0["rewards/accuracies"], $"{trainN["rewards/accuracies"]} vs {train0["rewards/accuracies"]}");
        Assert.True(trainN["rewards/accuracies"] >= 0.9, $"train accuracy {trainN["rewards/accuracies"]}");
        Assert.True(trainN["rewards/margins"] > train0["rewards/margins"]);
        Assert.True(after["eval_rewards/accuracies"] > 0.5, $"eval accuracy {after["eval_rewards/accuracies"]}"); // 32 random pairs: generalises a little
        Assert.True(after["eval_loss"] < before["eval_loss"] - 0.05, $"eval loss {after["eval_loss"]}");

        // The base never trains: bit-identical weights, no gradients; only the adapters moved.
        var baseAfter = BaseBytes(model);
        Assert.Equal(baseBefore.Keys, baseAfter.Keys);
        Assert.All(baseBefore, kv => Assert.True(kv.Value.AsSpan().SequenceEqual(baseAfter[kv.Key]), kv.Key));
        Assert.All(model.Module.named_parameters().Where(p => !LoraAdapter.IsAdapterParameter(p.name)), p => Assert.Null(p.parameter.grad));
        Assert.All(model.Targets(), t => Assert.True(t.Adapter.B.abs().sum().item<float>() > 0, t.Path));

        // output_dir holds the PEFT adapter (and the tokenizer), not a full model.
        Assert.True(File.Exists(Path.Combine(output, PeftAdapter.ConfigFileName)));
        Assert.True(File.Exists(Path.Combine(output, PeftAdapter.WeightsFileName)));
        Assert.True(File.Exists(Path.Combine(output, "tokenizer.json")));
        Assert.False(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.Equal(baseDir, JsonNode.Parse(File.ReadAllText(Path.Combine(output, PeftAdapter.ConfigFileName)))!["base_model_name_or_path"]!.GetValue<string>());

        // Merged into the weights (after training, B ≠ 0), the plain model gives the adapter model's log-probs.
        using var ids = LoraModelTests.Ids(seed: 8);
        model.Module.eval();
        using var adapted = LoraModelTests.LogProbs(model, ids);
        using var fresh = ModelLoader.Load(baseDir);
        PeftAdapter.Load(fresh, output);
        using var reloaded = LoraModelTests.LogProbs(fresh, ids);
        Assert.True(TensorBits.Identical(adapted, reloaded));
        fresh.Merge();
        using var merged = LoraModelTests.LogProbs(fresh, ids);
        double diff = (merged - adapted).abs().max().item<float>();
        Assert.True(diff <= 1e-5, $"merged vs adapter log-probs differ by {diff}");
    }

    [Fact]
    public void LoraCheckpointsHoldOnlyAdaptersAndResumeBitExactly()
    {
        using var tmp = TestPaths.CreateTempDir();
        var baseDir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "base"), "gpt2", seed: 4, withTokenizer: false);
        var data = Pairs(10, seed: 3);
        var lora = new LoraOptions { TargetModules = ["c_attn", "mlp.c_proj"], LoraDropout = 0.2 };
        DpoOptions Args(string output) => new()
        {
            OutputDir = output,
            LearningRate = 1e-2,
            PerDeviceTrainBatchSize = 3,       // 4 micro-batches per epoch: the resume point is mid-epoch
            GradientAccumulationSteps = 1,
            MaxSteps = 6,
            SaveSteps = 3,
            LoggingSteps = 1,
            WarmupSteps = 2,
            DisableDropout = false,            // LoRA dropout draws from the torch generator: its state must be restored
            ReportTo = [ReportTarget.Jsonl],
            Seed = 11,
        };

        var full = Path.Combine(tmp.Path, "full");
        using (var model = ModelLoader.Load(baseDir))
        {
            model.Inject(lora, seed: 2);
            using var trainer = new DpoTrainer(model, refModel: null, Args(full), data, padTokenId: 0);
            trainer.Train();
            Assert.Equal("adapters_disabled", trainer.TrainReference!.Kind); // a LoRA policy's default reference: its base
        }

        var checkpoint = Path.Combine(full, "checkpoint-3");
        Assert.Equal(
            ["adapter_config.json", "adapter_model.safetensors", "checkpoint_manifest.json", "optimizer.json", "optimizer.safetensors", "rng_state.safetensors", "scheduler.json", "trainer_state.json"],
            Directory.GetFiles(checkpoint).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var names = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "optimizer.json")))!["param_names"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.Equal(8, names.Count); // (c_attn + mlp.c_proj) × 2 layers × (lora_A, lora_B)
        Assert.All(names, n => Assert.True(LoraAdapter.IsAdapterParameter(n), n));
        using (var opt = SafeTensorsFile.Open(Path.Combine(checkpoint, "optimizer.safetensors")))
        {
            Assert.Equal(16, opt.Tensors.Count); // exp_avg and exp_avg_sq of the adapters only
        }

        // Resume from checkpoint-3 alone, with adapters injected from another seed (the checkpoint replaces them).
        var resumed = Path.Combine(tmp.Path, "resumed");
        Directory.CreateDirectory(resumed);
        CopyDirectory(checkpoint, Path.Combine(resumed, "checkpoint-3"));
        File.Copy(Path.Combine(full, DpoTrainer.MetricsFileName), Path.Combine(resumed, DpoTrainer.MetricsFileName));
        using (var model = ModelLoader.Load(baseDir))
        {
            model.Inject(lora, seed: 99);
            var args = Args(resumed);
            args.Resume = true;
            using var trainer = new DpoTrainer(model, refModel: null, args, data, padTokenId: 0);
            Assert.Equal(6, trainer.Train().GlobalStep);
        }

        Assert.Equal(File.ReadAllBytes(Path.Combine(full, PeftAdapter.WeightsFileName)), File.ReadAllBytes(Path.Combine(resumed, PeftAdapter.WeightsFileName)));
        Assert.Equal(File.ReadAllBytes(Path.Combine(full, "checkpoint-6", "optimizer.safetensors")), File.ReadAllBytes(Path.Combine(resumed, "checkpoint-6", "optimizer.safetensors")));
        Assert.Equal(StableMetrics(full), StableMetrics(resumed));

        // A LoRA checkpoint does not resume a full fine-tuning run, and the other way round.
        using (var plain = ModelLoader.Load(baseDir))
        {
            var e = Assert.Throws<DpoSharpException>(() => Checkpointer.LoadModelWeights(plain, checkpoint));
            Assert.Contains("holds a LoRA adapter", e.Message);
            plain.Inject(lora);
            e = Assert.Throws<DpoSharpException>(() => Checkpointer.LoadModelWeights(plain, baseDir));
            Assert.Contains("not written by a LoRA run", e.Message);
        }
    }

    [Fact]
    public void PrecomputedReferenceOfALoraPolicyIsItsBase()
    {
        using var tmp = TestPaths.CreateTempDir();
        var baseDir = TinyCheckpoints.Write(Path.Combine(tmp.Path, "base"), "phi", seed: 7, withTokenizer: false);
        var data = Pairs(6, seed: 4);
        using var model = ModelLoader.Load(baseDir);
        model.Inject(new LoraOptions());
        LoraModelTests.RandomizeAdapters(model, seed: 3); // an adapter loaded to continue training: not the identity
        var args = new DpoOptions { OutputDir = Path.Combine(tmp.Path, "out"), PrecomputeRefLogProbs = true, MaxSteps = 1, PerDeviceTrainBatchSize = 6, ReportTo = [ReportTarget.None] };
        using var trainer = new DpoTrainer(model, refModel: null, args, data, padTokenId: 0);
        trainer.Train();
        var pre = Assert.IsType<PrecomputedReference>(trainer.TrainReference);

        using var plain = ModelLoader.Load(baseDir);
        var expected = PrecomputedReference.Create(plain, data, new PreferenceCollator(0) { PrefixSharing = true }, batchSize: 6, cacheDir: null); // the run's layout
        Assert.Equal(expected.Chosen, pre.Chosen);
        Assert.Equal(expected.Rejected, pre.Rejected);
        Assert.True(model.AdaptersEnabled());
    }

    /// <summary>metrics.jsonl without the wall-clock metrics.</summary>
    private static string StableMetrics(string dir) => string.Join("\n", JsonlMetricSink.Read(Path.Combine(dir, DpoTrainer.MetricsFileName)).Select(r =>
        r.Step + ":" + string.Join(",", r.Values.Where(kv => !kv.Key.Contains("per_second", StringComparison.Ordinal) && !kv.Key.EndsWith("runtime", StringComparison.Ordinal))
            .Select(kv => $"{kv.Key}={kv.Value:R}"))));

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
        {
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        }
    }
}
