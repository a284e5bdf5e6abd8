using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Training;

/// <summary>
/// TR-DPO (<c>sync_ref_model</c>): the reference after a sync is α·policy + (1 − α)·reference computed here in
/// doubles from snapshots, it does not move between syncs, a run resumed across a sync equals the uninterrupted one
/// bit for bit (policy, reference, metrics), and the option combinations TRL refuses are refused.
/// </summary>
[Collection(nameof(TorchRngCollection))]
public class ReferenceSyncTests
{
    private static DpoOptions Options(string outputDir, Action<DpoOptions>? configure = null)
    {
        var o = new DpoOptions
        {
            OutputDir = outputDir,
            LearningRate = 1e-2,
            PerDeviceTrainBatchSize = 3,
            MaxSteps = 3,
            LoggingSteps = 1,
            SaveSteps = 1000,
            Seed = 123,
            SyncRefModel = true,
            RefModelSyncSteps = 2,
        };
        configure?.Invoke(o);
        return o;
    }

    [Fact]
    public void TheReferenceBecomesTheMixupAtEverySyncStepAndStaysBetween()
    {
        using var dir = TestPaths.CreateTempDir();
        using var model = new TinyCausalLM(seed: 9);
        using var reference = model.Clone();
        var ref0 = reference.Snapshot();
        var policyAt = new Dictionary<int, Dictionary<string, float[]>>();
        var refAt = new Dictionary<int, Dictionary<string, float[]>>();
        using (var trainer = new DpoTrainer(model, reference, Options(dir.Path, o => o.RefModelMixupAlpha = 0.6), TinyData.Pairs(9), padTokenId: 0))
        {
            trainer.StepCompleted += (step, _) =>
            {
                policyAt[step] = model.Snapshot();
                refAt[step] = reference.Snapshot();
            };
            trainer.Train();
        }

        Assert.Equal([1, 2, 3], refAt.Keys.Order());
        double moved = 0;
        foreach (var (name, r0) in ref0)
        {
            Assert.Equal(r0, refAt[1][name]);                   // step 1: no sync
            Assert.Equal(refAt[2][name], refAt[3][name]);       // step 3: no sync either
            var p2 = policyAt[2][name];
            var r2 = refAt[2][name];
            for (int i = 0; i < r0.Length; i++)
            {
                double expected = (0.6 * p2[i]) + (0.4 * r0[i]);
                Assert.True(Math.Abs(r2[i] - expected) <= 1e-6 * Math.Max(1, Math.Abs(expected)), $"{name}[{i}]: {r2[i]} vs {expected}");
                moved = Math.Max(moved, Math.Abs(p2[i] - r0[i]));
            }
        }

        Assert.True(moved > 1e-3, $"the policy hardly moved ({moved}): the test would not tell a sync from none");
    }

    [Fact]
    public void ARunResumedAcrossASyncMatchesTheUninterruptedOneBitForBit()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(10);
        var full = Path.Combine(dir.Path, "full");
        var resumed = Path.Combine(dir.Path, "resumed");
        static void Configure(DpoOptions o)
        {
            o.SaveSteps = 3;
            o.MaxSteps = 6;                       // syncs at 2, 4, 6; the resume from checkpoint-3 crosses 4 and 6
            o.DisableDropout = false;
            o.WarmupSteps = 2;
        }

        Dictionary<string, float[]> fullPolicy, fullReference;
        using (var model = new TinyCausalLM(seed: 9))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, Options(full, Configure), data, padTokenId: 0))
        {
            trainer.Train();
            fullPolicy = model.Snapshot();
            fullReference = reference.Snapshot();
        }

        using (var model = new TinyCausalLM(seed: 9))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, Options(resumed, Configure), data, padTokenId: 0))
        {
            using var cts = new CancellationTokenSource();
            trainer.StepCompleted += (step, _) =>
            {
                if (step == 4)
                {
                    cts.Cancel();
                }
            };
            Assert.Throws<OperationCanceledException>(() => trainer.Train(cancellationToken: cts.Token));
        }

        var latest = Path.Combine(resumed, "checkpoint-3");
        Assert.Equal(latest, DpoTrainer.FindLatestCheckpoint(resumed));
        Assert.True(File.Exists(Path.Combine(latest, "ref_model.safetensors")));

        using (var model = new TinyCausalLM(seed: 9))
        using (var reference = model.Clone())            // the starting weights: the checkpoint's synced ones replace them
        using (var trainer = new DpoTrainer(model, reference, Options(resumed, Configure), data, padTokenId: 0))
        {
            Assert.Equal(6, trainer.Train(latest).GlobalStep);
            var policy = model.Snapshot();
            var reference2 = reference.Snapshot();
            foreach (var (k, w) in fullPolicy)
            {
                Assert.Equal(w, policy[k]);
                Assert.Equal(fullReference[k], reference2[k]);
            }
        }

        Assert.Equal(DpoTrainerTests.StableMetrics(Path.Combine(full, DpoTrainer.MetricsFileName)), DpoTrainerTests.StableMetrics(Path.Combine(resumed, DpoTrainer.MetricsFileName)));
    }

    [Fact]
    public void ResumingWithoutTheSyncedReferenceIsRefused()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TinyData.Pairs(6);
        using (var model = new TinyCausalLM(seed: 9))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, Options(dir.Path, o => { o.SyncRefModel = false; o.RefModelSyncSteps = 512; o.SaveSteps = 1; o.MaxSteps = 1; }), data, padTokenId: 0))
        {
            trainer.Train();
        }

        using (var model = new TinyCausalLM(seed: 9))
        using (var reference = model.Clone())
        using (var trainer = new DpoTrainer(model, reference, Options(dir.Path, o => o.MaxSteps = 2), data, padTokenId: 0))
        {
            var ex = Assert.Throws<DpoSharpException>(() => trainer.Train(Path.Combine(dir.Path, "checkpoint-1")));
            Assert.Contains("ref_model.safetensors", ex.Message);
        }
    }

    [Theory]
    [InlineData("reference_free", "reference_free")]
    [InlineData("precompute", "precompute_ref_log_probs")]
    [InlineData("lora", "use_peft")]
    [InlineData("orpo", "loss_type orpo")]
    [InlineData("alpha", "ref_model_mixup_alpha must be in [0, 1]")]
    [InlineData("steps", "ref_model_sync_steps must be at least 1")]
    [InlineData("mixup_without_sync", "only with sync_ref_model")]
    [InlineData("kto", "sync_ref_model")]
    [InlineData("ld_range", "ld_alpha must be in [0, 1]")]
    [InlineData("ld_simpo", "ld_alpha is a DPO option")]
    [InlineData("ld_kto", "ld_alpha")]
    public void OptionsTrlRefusesAreRefusedNamingTheOption(string setup, string fragment)
    {
        var o = new DpoOptions { MaxSteps = 1, SyncRefModel = true };
        switch (setup)
        {
            case "reference_free": o.ReferenceFree = true; break;
            case "precompute": o.PrecomputeRefLogProbs = true; break;
            case "lora": o.UsePeft = true; break;
            case "orpo": o.LossType = ["orpo"]; break;
            case "alpha": o.RefModelMixupAlpha = 1.5; break;
            case "steps": o.RefModelSyncSteps = 0; break;
            case "mixup_without_sync": o.SyncRefModel = false; o.RefModelMixupAlpha = 0.5; break;
            case "kto": o.Algorithm = TrainingAlgorithm.Kto; break;
            case "ld_range": o.SyncRefModel = false; o.LdAlpha = 1.5; break;
            case "ld_simpo": o.SyncRefModel = false; o.LossType = ["simpo"]; o.LdAlpha = 0.5; break;
            case "ld_kto": o.SyncRefModel = false; o.Algorithm = TrainingAlgorithm.Kto; o.LdAlpha = 0.5; break;
        }

        var ex = Assert.Throws<DpoSharpException>(o.Validate);
        Assert.Contains(fragment, ex.Message);

        // The same options without the refused part are valid.
        new DpoOptions { MaxSteps = 1, SyncRefModel = true, RefModelMixupAlpha = 1, RefModelSyncSteps = 1, LdAlpha = 0 }.Validate();
    }
}
