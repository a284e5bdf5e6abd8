using System.Text;
using System.Text.Json.Nodes;
using DpoSharp.IO;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Reliability;

/// <summary>
/// The files of a trainer checkpoint that resuming reads (trainer_state.json, optimizer.json and
/// optimizer.safetensors, rng_state.safetensors, the reference log-probs, the manifest) fed hand-made hostile files
/// and seeded mutations of a real checkpoint: every case ends in success or a <see cref="DpoSharpException"/> naming
/// the file — the readers themselves hold, also for a checkpoint without a manifest or one edited with its manifest.
/// In the RNG collection: a mutated generator state that loads changes the global generator (restored afterwards).
/// </summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class CheckpointFuzzTests
{
    private const int Pairs = 8;

    private static readonly DataLayout Layout = new(Seed: 5, PerDeviceTrainBatchSize: 2, GradientAccumulationSteps: 1, NumTrainExamples: Pairs, WorldSize: 1);

    private static readonly ReaderFuzzTests.Reader[] All =
    [
        new("trainer_state.json", MutationKind.Json, 200, dir => Seed(dir, Checkpointer.TrainerStateFile), ReadCheckpoint, _ => ReaderFuzzTests.HostileJson.Concat(HostileTrainerStates(dir: null))),
        new("optimizer.json", MutationKind.Json, 250, dir => Seed(dir, "optimizer.json"), ReadCheckpoint, HostileOptimizerJson),
        new("optimizer.safetensors", MutationKind.SafeTensors, 250, dir => Seed(dir, "optimizer.safetensors"), ReadCheckpoint, dir => HostileTensors(dir, "optimizer.safetensors")),
        new("rng_state.safetensors", MutationKind.SafeTensors, 250, dir => Seed(dir, "rng_state.safetensors"), ReadCheckpoint, dir => HostileTensors(dir, "rng_state.safetensors")),
        new("ref_logps-train.safetensors", MutationKind.SafeTensors, 200, dir => Seed(dir, "ref_logps-train.safetensors"), ReadCheckpoint, dir => HostileTensors(dir, "ref_logps-train.safetensors")),
        new("checkpoint_manifest.json", MutationKind.Json, 200, dir => Seed(dir, Checkpointer.ManifestFile), ReadCheckpoint, _ => ReaderFuzzTests.HostileJson),
        new("scheduler.json", MutationKind.Json, 50, dir => Seed(dir, "scheduler.json"), ReadCheckpoint, _ => ReaderFuzzTests.HostileJson),
    ];

    /// <summary>Reader names for the theory.</summary>
    public static TheoryData<string> Readers => new(All.Select(r => r.Name));

    [Theory]
    [MemberData(nameof(Readers))]
    public void HostileAndMutatedCheckpointFilesEndInSuccessOrANamedError(string readerName)
    {
        using var rng = torch.random.get_rng_state();
        try
        {
            ReaderFuzzTests.Fuzz(All.Single(r => r.Name == readerName));
        }
        finally
        {
            torch.random.set_rng_state(rng);
        }
    }

    /// <summary>Two faults the fuzz found: a one-element AdamW moment was broadcast into the parameter's shape by
    /// <c>copy_</c> (silently wrong optimizer state), and a generator state with its Mersenne Twister position out of
    /// range aborted the process inside libtorch (TorchSharp does not catch that error). Both are now named errors.</summary>
    [Fact]
    public void ABroadcastableMomentAndAnInvalidGeneratorStateAreNamedErrors()
    {
        using var saved = torch.random.get_rng_state();
        using var dir = TestPaths.CreateTempDir();
        try
        {
            var optimizer = Seed(dir.Path, "optimizer.safetensors");
            var hostile = HostileTensors(dir.Path, "optimizer.safetensors").ToDictionary(x => x.Item1, x => x.Item2);
            File.WriteAllBytes(optimizer, hostile["exp_avg.0 one element"]);
            var e = Assert.Throws<DpoSharpException>(() => ReadCheckpoint(dir.Path));
            Assert.Contains(optimizer + ": 'exp_avg.0' has shape [1],", e.Message);

            using var again = TestPaths.CreateTempDir();
            var rng = Seed(again.Path, "rng_state.safetensors");
            File.WriteAllBytes(rng, HostileTensors(again.Path, "rng_state.safetensors").Single(x => x.Item1 == "generator state out of range").Item2);
            e = Assert.Throws<DpoSharpException>(() => ReadCheckpoint(again.Path));
            Assert.Contains(rng + ": 'torch_cpu' is not a valid generator state (position 'left'", e.Message);
        }
        finally
        {
            torch.random.set_rng_state(saved);
        }
    }

    /// <summary>A real checkpoint of a one-step DPO run with precomputed reference log-probs (so it carries a
    /// ref_logps group); returns the file <paramref name="name"/> in it.</summary>
    private static string Seed(string dir, string name)
    {
        var args = new DpoOptions
        {
            OutputDir = Path.Combine(dir, "out"),
            LearningRate = 1e-2,
            PerDeviceTrainBatchSize = Layout.PerDeviceTrainBatchSize,
            MaxSteps = 1,
            SaveSteps = 1,
            ReportTo = [],
            Seed = Layout.Seed,
            PrecomputeRefLogProbs = true,
        };
        using (var model = new TinyCausalLM(seed: 2))
        using (var trainer = new DpoTrainer(model, null, args, TinyData.Pairs(Pairs), padTokenId: 0))
        {
            trainer.Train();
        }

        var path = Path.Combine(Checkpoint(dir), name);
        Assert.True(File.Exists(path), $"the seed checkpoint has no {name}");
        return path;
    }

    private static string Checkpoint(string dir) => Path.Combine(dir, "out", "checkpoint-1");

    /// <summary>Everything resuming reads from a checkpoint, in the loop's order.</summary>
    private static void ReadCheckpoint(string dir)
    {
        var ckpt = Checkpoint(dir);
        _ = Checkpointer.Verify(ckpt); // a reason, never an exception
        var state = Checkpointer.ReadState(ckpt, Layout);
        var objective = Checkpointer.ReadObjectiveState(ckpt, state);
        try
        {
            if (objective.TensorGroups.TryGetValue("ref_logps-train", out var group))
            {
                _ = PrecomputedReference.FromCheckpoint(group, Pairs, Path.Combine(ckpt, "ref_logps-train.safetensors"));
            }
        }
        finally
        {
            objective.DisposeTensors();
        }

        using var model = new TinyCausalLM(seed: 2);
        Checkpointer.LoadModelWeights(model, ckpt);
        var setup = OptimizerFactory.CreateAdamW([.. model.Module.named_parameters().Select(p => (p.name, p.parameter))], 1e-2, 0.9, 0.999, 1e-8, 0.0);
        try
        {
            Checkpointer.LoadOptimizerState(ckpt, setup.StatesInOrder());
        }
        finally
        {
            setup.Optimizer.Dispose();
        }

        Checkpointer.LoadRngState(ckpt);
    }

    private static IEnumerable<(string, byte[])> HostileTrainerStates(string? dir)
    {
        _ = dir;
        var seed = new TrainerState { GlobalStep = 1, Seed = Layout.Seed, TotalSteps = 1, PerDeviceTrainBatchSize = 2, GradientAccumulationSteps = 1, NumTrainPairs = Pairs, WorldSize = 1 };
        var tmp = Path.GetTempFileName();
        Checkpointer.WriteTrainerState(tmp, seed);
        var text = File.ReadAllText(tmp);
        File.Delete(tmp);
        (string, byte[]) Edit(string name, Action<JsonObject> edit)
        {
            var o = JsonNode.Parse(text)!.AsObject();
            edit(o);
            return (name, Encoding.UTF8.GetBytes(o.ToJsonString()));
        }

        yield return Edit("global_step -1", o => o["global_step"] = -1);
        yield return Edit("micro_batch -5", o => o["data_position"]!["micro_batch"] = -5);
        yield return Edit("data epoch 2^31-1", o => o["data_position"]!["epoch"] = int.MaxValue);
        yield return Edit("global_step a string", o => o["global_step"] = "1");
        yield return Edit("seed 1.5", o => o["data_position"]!["seed"] = 1.5);
        yield return Edit("another seed", o => o["data_position"]!["seed"] = 6);
        yield return Edit("another batch size", o => o["data_position"]!["per_device_train_batch_size"] = 4);
        yield return Edit("data_position missing", o => o.Remove("data_position"));
        yield return Edit("log_history an object", o => o["log_history"] = new JsonObject());
        yield return Edit("loss_state holding a string", o => o["loss_state"] = new JsonObject { ["running_mean"] = "x" });
    }

    private static IEnumerable<(string, byte[])> HostileOptimizerJson(string dir)
    {
        var text = File.ReadAllText(Path.Combine(Checkpoint(dir), "optimizer.json"));
        (string, byte[]) Edit(string name, Action<JsonObject> edit)
        {
            var o = JsonNode.Parse(text)!.AsObject();
            edit(o);
            return (name, Encoding.UTF8.GetBytes(o.ToJsonString()));
        }

        yield return Edit("one step fewer", o => o["steps"]!.AsArray().RemoveAt(0));
        yield return Edit("step -1", o => o["steps"]![0] = -1);
        yield return Edit("step 2^63-1", o => o["steps"]![0] = long.MaxValue);
        yield return Edit("param names reversed", o => o["param_names"] = new JsonArray([.. o["param_names"]!.AsArray().Reverse().Select(n => n!.DeepClone())]));
        yield return Edit("param names holding numbers", o => o["param_names"] = new JsonArray(1, 2));
        yield return Edit("steps an object", o => o["steps"] = new JsonObject());
        foreach (var x in ReaderFuzzTests.HostileJson)
        {
            yield return x;
        }
    }

    /// <summary>A checkpoint tensor file with each tensor dropped, shrunk to one element (which copy_ would broadcast),
    /// turned into int64 or NaN, and the file emptied of tensors.</summary>
    private static IEnumerable<(string, byte[])> HostileTensors(string dir, string file)
    {
        var path = Path.Combine(Checkpoint(dir), file);
        Dictionary<string, Tensor> tensors;
        using (var f = SafeTensorsFile.Open(path))
        {
            tensors = f.ReadAll();
        }

        var tmp = Path.Combine(dir, "hostile.safetensors");
        byte[] Write(IEnumerable<(string Name, Tensor Tensor)> edited)
        {
            SafeTensorsWriter.Write(tmp, [.. edited]);
            var bytes = File.ReadAllBytes(tmp);
            File.Delete(tmp);
            return bytes;
        }

        var all = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)).ToList();
        using var one = ones(1);
        using var oneByte = ones(1, dtype: ScalarType.Byte);
        foreach (var (name, t) in all.Take(3))
        {
            using var asInt = t.to(ScalarType.Int64);
            using var nan = full_like(t.to(ScalarType.Float32), double.NaN);
            using var longer = cat([t.flatten(), t.flatten()]);
            yield return ($"{name} missing", Write(all.Where(x => x.Key != name)));
            yield return ($"{name} one element", Write(all.Select(x => x.Key == name ? (x.Key, t.dtype == ScalarType.Byte ? oneByte : one) : x)));
            yield return ($"{name} twice as long", Write(all.Select(x => x.Key == name ? (x.Key, longer) : x)));
            yield return ($"{name} int64", Write(all.Select(x => x.Key == name ? (x.Key, asInt) : x)));
            yield return ($"{name} NaN", Write(all.Select(x => x.Key == name ? (x.Key, nan) : x)));
        }

        if (file == "rng_state.safetensors")
        {
            // Right size and type, invalid Mersenne Twister position (left/next fields out of range).
            var bytes = all[0].Value.data<byte>().ToArray();
            for (int i = 8; i < 24; i++)
            {
                bytes[i] = 0xFF;
            }

            using var bad = tensor(bytes, dtype: ScalarType.Byte);
            yield return ("generator state out of range", Write([(all[0].Key, bad)]));
        }

        yield return ("no tensors", Write([]));
        foreach (var t in tensors.Values)
        {
            t.Dispose();
        }
    }
}
