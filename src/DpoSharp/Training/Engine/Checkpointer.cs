using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DpoSharp.IO;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>
/// Checkpoint layout (<c>output_dir/checkpoint-&lt;step&gt;/</c>, written into <c>checkpoint-&lt;step&gt;.tmp</c> and
/// renamed when complete): the model in Hugging Face layout, <c>optimizer.safetensors</c> + <c>optimizer.json</c>
/// (AdamW moments and step counts), <c>scheduler.json</c>, <c>rng_state.safetensors</c>, reference log-probs when
/// precomputed, <c>trainer_state.json</c> (step, data position, loss state, log history), and
/// <c>checkpoint_manifest.json</c> (size and SHA-256 of every other file), written last; resume takes the newest
/// checkpoint that verifies against it.
/// The checkpointer is handed a plain <see cref="CheckpointRecord"/> and knows nothing of trainers or objectives:
/// an objective's tensor groups are files named after the group (e.g. <c>ref_logps-train.safetensors</c>).
/// </summary>
public static partial class Checkpointer
{
    /// <summary>Name of the trainer state file.</summary>
    public const string TrainerStateFile = "trainer_state.json";

    private const string OptimizerTensors = "optimizer.safetensors";
    private const string OptimizerJson = "optimizer.json";
    private const string SchedulerJson = "scheduler.json";
    private const string RngFile = "rng_state.safetensors";

    /// <summary>The newest complete checkpoint directory under <paramref name="outputDir"/> (has trainer_state.json), or null.</summary>
    public static string? FindLatest(string outputDir) => FindLatest(outputDir, out _);

    /// <summary>
    /// The newest complete checkpoint directory under <paramref name="outputDir"/>, or null; <paramref name="skipped"/>
    /// lists the newer checkpoint folders passed over and why (a run stopped while writing them).
    /// </summary>
    public static string? FindLatest(string outputDir, out IReadOnlyList<SkippedCheckpoint> skipped)
    {
        var passed = new List<SkippedCheckpoint>();
        skipped = passed;
        if (!Directory.Exists(outputDir))
        {
            return null;
        }

        var candidates = Directory.EnumerateDirectories(outputDir, "checkpoint-*")
            .Select(d => (Dir: d, Match: CheckpointFolderName().Match(Path.GetFileName(d))))
            .Where(x => x.Match.Success)
            .Select(x => (x.Dir, Step: long.Parse(x.Match.Groups[1].Value, CultureInfo.InvariantCulture), Partial: x.Match.Groups[2].Success))
            .OrderByDescending(x => x.Step)
            .ThenBy(x => x.Partial);
        foreach (var (dir, _, partial) in candidates)
        {
            if (partial)
            {
                passed.Add(new SkippedCheckpoint(dir, "incomplete: the run stopped while writing it (.tmp)"));
            }
            else if (!File.Exists(Path.Combine(dir, TrainerStateFile)))
            {
                passed.Add(new SkippedCheckpoint(dir, $"incomplete: it has no {TrainerStateFile}"));
            }
            else if (Verify(dir) is { } why)
            {
                passed.Add(new SkippedCheckpoint(dir, "does not verify against its manifest: " + why));
            }
            else
            {
                return dir;
            }
        }

        return null;
    }

    /// <summary>
    /// Deletes the oldest complete checkpoints so that at most <paramref name="limit"/> remain (save_total_limit), but
    /// never the newest checkpoint that verifies (its files present with the sizes its manifest records): when none
    /// of the newest <paramref name="limit"/> does, that one is kept too.
    /// </summary>
    public static void Rotate(string outputDir, int limit)
    {
        var all = Directory.EnumerateDirectories(outputDir, "checkpoint-*")
            .Select(d => (Dir: d, Match: CheckpointName().Match(Path.GetFileName(d))))
            .Where(x => x.Match.Success)
            .OrderByDescending(x => long.Parse(x.Match.Groups[1].Value, CultureInfo.InvariantCulture))
            .Select(x => x.Dir)
            .ToList();
        var keep = all.Take(Math.Max(1, limit)).ToHashSet(StringComparer.Ordinal);
        if (!keep.Any(d => Verify(d, checksums: false) is null) && all.FirstOrDefault(d => !keep.Contains(d) && Verify(d, checksums: false) is null) is { } lastVerified)
        {
            keep.Add(lastVerified);
        }

        foreach (var dir in all.Where(d => !keep.Contains(d)))
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>One <c>metrics.jsonl</c> line: <c>{"step": n, "name": value, …}</c>.</summary>
    public static string LogLine(TrainerLogEntry entry)
    {
        var o = new JsonObject { ["step"] = entry.Step };
        foreach (var (k, v) in entry.Metrics)
        {
            o[k] = double.IsFinite(v) ? JsonValue.Create(v) : null;
        }

        return o.ToJsonString();
    }

    /// <summary>
    /// Writes the model as a Hugging Face directory: <see cref="ModelSaver.Save"/> for models built by
    /// <see cref="ModelLoader"/>, else <c>config.json</c> and <c>model.safetensors</c> with the module's state-dict names.
    /// A model with LoRA adapters writes only its adapters, as a PEFT adapter (<see cref="PeftAdapter.Save"/>), and
    /// the tokenizer files.
    /// </summary>
    public static void SaveModelDirectory(ICausalLM model, string dir, string? copyTokenizerFrom = null)
    {
        if (model.HasAdapters())
        {
            PeftAdapter.Save(model, dir);
            CopyTokenizerFiles(copyTokenizerFrom, dir);
            return;
        }

        if (model is CausalLMBase)
        {
            ModelSaver.Save(model, dir, copyTokenizerFrom);
            return;
        }

        // Models not built by ModelLoader (custom ICausalLM implementations): config.json + the state dict.
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), ToIndentedJson(model.Config.Raw.DeepClone()));
        var sd = model.Module.state_dict();
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), sd.Select(kv => (kv.Key, kv.Value)).ToList(), new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Copies the weights of a saved model directory (single or sharded safetensors) into <paramref name="model"/>;
    /// for a model with LoRA adapters, the directory's PEFT adapter into its adapters (<see cref="PeftAdapter.Load"/>).</summary>
    public static void LoadModelWeights(ICausalLM model, string dir)
    {
        if (model.HasAdapters())
        {
            if (!PeftAdapter.Exists(dir))
            {
                throw new DpoSharpException($"{dir}: this model has LoRA adapters but the checkpoint holds no {PeftAdapter.ConfigFileName}: it was not written by a LoRA run. Resume with the same LoRA settings, or without LoRA.");
            }

            PeftAdapter.Load(model, dir);
            return;
        }

        if (PeftAdapter.Exists(dir) && !File.Exists(Path.Combine(dir, SafeTensorsCheckpoint.SingleFileName)) && !File.Exists(Path.Combine(dir, SafeTensorsCheckpoint.IndexFileName)))
        {
            throw new DpoSharpException($"{dir}: the checkpoint holds a LoRA adapter ({PeftAdapter.ConfigFileName}) but this model has no adapters. Resume with the run's LoRA settings.");
        }

        if (model is CausalLMBase m)
        {
            using var checkpoint = SafeTensorsCheckpoint.Open(dir);
            m.LoadWeights(checkpoint);
            return;
        }

        // Models not built by ModelLoader: copy every tensor whose name is in the state dict (single file or shards).
        using var saved = SafeTensorsCheckpoint.Open(dir);
        var target = model.Module.state_dict();
        var loaded = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in saved.Names)
        {
            if (target.TryGetValue(name, out var dst))
            {
                saved.ReadInto(name, dst); // checks the shape, converts dtype/device, under no_grad
                loaded.Add(name);
            }
        }

        var missing = model.Module.named_parameters().Select(p => p.name).Where(n => !loaded.Contains(n)).ToList();
        if (missing.Count > 0)
        {
            throw new DpoSharpException($"{dir}: the saved model lacks {missing.Count} parameter(s), e.g. '{missing[0]}'.");
        }
    }

    /// <summary>
    /// Writes <c>checkpoint-&lt;step&gt;</c> under <paramref name="outputDir"/> atomically (into a <c>.tmp</c> folder,
    /// renamed when complete; an existing checkpoint of the same step is replaced) and returns its path.
    /// </summary>
    public static string Save(string outputDir, CheckpointRecord record)
    {
        ArgumentNullException.ThrowIfNull(outputDir);
        ArgumentNullException.ThrowIfNull(record);
        var state = record.State;
        var final = Path.Combine(outputDir, $"checkpoint-{state.GlobalStep}");
        var tmp = final + ".tmp";
        RemoveStaleTemporaryFolders(outputDir);

        Directory.CreateDirectory(tmp);
        SaveModelDirectory(record.Model, tmp, record.TokenizerFilesSource);
        SaveOptimizer(record.Optimizer, tmp);
        File.WriteAllText(Path.Combine(tmp, SchedulerJson), ToIndentedJson(new JsonObject
        {
            ["type"] = record.Schedule.Type,
            ["last_step"] = state.GlobalStep,
            ["base_lr"] = record.Schedule.BaseLearningRate,
            ["total_steps"] = state.TotalSteps,
        }));
        using (var rng = torch.random.get_rng_state())
        {
            SafeTensorsWriter.Write(Path.Combine(tmp, RngFile), [("torch_cpu", rng)], new Dictionary<string, string> { ["data_seed"] = state.Seed.ToString(CultureInfo.InvariantCulture) });
        }

        foreach (var (group, tensors) in record.Objective.TensorGroups)
        {
            SafeTensorsWriter.Write(Path.Combine(tmp, group + ".safetensors"), [.. tensors.Select(kv => (kv.Key, kv.Value))]);
        }

        WriteTrainerState(Path.Combine(tmp, TrainerStateFile), state);
        WriteManifest(tmp);

        if (Directory.Exists(final))
        {
            Directory.Delete(final, recursive: true);
        }

        Directory.Move(tmp, final);
        return final;
    }

    /// <summary>Reads the trainer state of checkpoint <paramref name="dir"/>; a folder without one is not a complete checkpoint.</summary>
    public static TrainerState ReadState(string dir)
    {
        var statePath = Path.Combine(dir, TrainerStateFile);
        if (!File.Exists(statePath))
        {
            throw new DpoSharpException($"{dir} is not a complete checkpoint ({TrainerStateFile} is missing); resume from another checkpoint.");
        }

        return ReadTrainerState(statePath);
    }

    /// <summary>
    /// Reads the trainer state of checkpoint <paramref name="dir"/> and checks that its data position refers to the
    /// same data layout as <paramref name="expected"/> (seed, batch size, accumulation, data size, world size).
    /// </summary>
    public static TrainerState ReadState(string dir, DataLayout expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        var state = ReadState(dir);
        var statePath = Path.Combine(dir, TrainerStateFile);
        if (state.Seed != expected.Seed)
        {
            throw new DpoSharpException($"{statePath}: the checkpoint was trained with seed {state.Seed}, this run has seed {expected.Seed}; use the same seed to resume.");
        }

        if (state.WorldSize != 0 && state.WorldSize != expected.WorldSize)
        {
            throw new DpoSharpException($"{statePath}: the checkpoint was trained by {state.WorldSize} data-parallel process(es), this run has {expected.WorldSize}; " +
                $"each rank's data position depends on the number of processes. Resume with the same number ({(state.WorldSize > 1 ? $"mpirun -np {state.WorldSize} dposharp …" : "one process, without mpirun")}), or start a fresh run in another output_dir.");
        }

        foreach (var (name, saved, now) in new[]
        {
            ("per_device_train_batch_size", state.PerDeviceTrainBatchSize, expected.PerDeviceTrainBatchSize),
            ("gradient_accumulation_steps", state.GradientAccumulationSteps, expected.GradientAccumulationSteps),
            ("number of training pairs", state.NumTrainPairs, expected.NumTrainExamples),
        })
        {
            // 0: a checkpoint from before these were recorded.
            if (saved != 0 && saved != now)
            {
                throw new DpoSharpException($"{statePath}: the checkpoint was trained with {name} {saved}, this run has {now}; its data position would point at " +
                    $"other pairs. Resume with the same data and {name}, or start a fresh run in another output_dir.");
            }
        }

        return state;
    }

    /// <summary>
    /// The objective state checkpoint <paramref name="dir"/> holds: the scalars of <paramref name="state"/> and every
    /// tensor group file (any safetensors file that is not the model, optimizer or RNG state). The caller disposes
    /// the tensors.
    /// </summary>
    public static ObjectiveState ReadObjectiveState(string dir, TrainerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var groups = new Dictionary<string, IReadOnlyDictionary<string, Tensor>>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(dir, "*.safetensors").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (name.StartsWith("model", StringComparison.Ordinal) || file.EndsWith(PeftAdapter.WeightsFileName, StringComparison.Ordinal) || file.EndsWith(OptimizerTensors, StringComparison.Ordinal) || file.EndsWith(RngFile, StringComparison.Ordinal))
            {
                continue;
            }

            groups[name] = ReadAllTensors(file);
        }

        return new ObjectiveState(new Dictionary<string, double>(state.LossState), groups) { Source = dir };
    }

    /// <summary>Restores the torch random generator saved in checkpoint <paramref name="dir"/>.</summary>
    /// <exception cref="DpoSharpException">The file lacks the generator state, or holds one of another size or type.</exception>
    public static void LoadRngState(string dir)
    {
        var path = Path.Combine(dir, RngFile);
        var rng = ReadAllTensors(path);
        try
        {
            using var current = torch.random.get_rng_state();
            if (!rng.TryGetValue("torch_cpu", out var saved))
            {
                throw new DpoSharpException($"{path}: no tensor 'torch_cpu' (the CPU generator state); resume from another checkpoint.");
            }

            if (saved.dtype != current.dtype || !saved.shape.SequenceEqual(current.shape))
            {
                throw new DpoSharpException($"{path}: 'torch_cpu' is {saved.dtype} [{string.Join(", ", saved.shape)}], a generator state is {current.dtype} [{string.Join(", ", current.shape)}]; resume from another checkpoint.");
            }

            if (InvalidGeneratorState(saved.data<byte>().ToArray()) is { } why)
            {
                throw new DpoSharpException($"{path}: 'torch_cpu' is not a valid generator state ({why}); resume from another checkpoint.");
            }

            torch.random.set_rng_state(saved);
        }
        finally
        {
            foreach (var t in rng.Values)
            {
                t.Dispose();
            }
        }
    }

    /// <summary>
    /// Why libtorch would refuse <paramref name="state"/> (a CPU generator state, <c>CPUGeneratorImplState</c>), or
    /// null. libtorch checks the Mersenne Twister position in <c>set_state</c> but TorchSharp does not catch that
    /// error: an invalid state aborts the process, so the same checks run here first. Layout of the state's legacy
    /// part: initial seed (int64), <c>left</c> (int32), <c>seeded</c> (int32), <c>next</c> (uint64), 624 words.
    /// </summary>
    internal static string? InvalidGeneratorState(byte[] state)
    {
        const int MersenneStateN = 624;
        if (state.Length < 24)
        {
            return $"{state.Length} bytes";
        }

        int left = BitConverter.ToInt32(state, 8);
        int seeded = BitConverter.ToInt32(state, 12);
        uint next = (uint)BitConverter.ToUInt64(state, 16);
        return seeded == 0 ? "not seeded"
            : left is <= 0 or > MersenneStateN ? $"position 'left' {left} outside 1..{MersenneStateN}"
            : next > MersenneStateN ? $"position 'next' {next} outside 0..{MersenneStateN}"
            : null;
    }

    /// <summary>Writes <paramref name="state"/> as JSON.</summary>
    public static void WriteTrainerState(string path, TrainerState state)
    {
        var history = new JsonArray();
        foreach (var e in state.LogHistory)
        {
            history.Add(JsonNode.Parse(LogLine(e)));
        }

        var loss = new JsonObject();
        foreach (var (k, v) in state.LossState)
        {
            loss[k] = v;
        }

        var o = new JsonObject
        {
            ["global_step"] = state.GlobalStep,
            ["epoch"] = state.Epoch,
            ["max_steps"] = state.TotalSteps,
            ["num_tokens"] = state.NumTokens,
            ["data_position"] = new JsonObject
            {
                ["epoch"] = state.DataEpoch,
                ["micro_batch"] = state.MicroBatch,
                ["seed"] = state.Seed,
                ["per_device_train_batch_size"] = state.PerDeviceTrainBatchSize,
                ["gradient_accumulation_steps"] = state.GradientAccumulationSteps,
                ["num_train_pairs"] = state.NumTrainPairs,
                ["world_size"] = state.WorldSize,
            },
            ["loss_state"] = loss,
            ["log_history"] = history,
        };
        File.WriteAllText(path, ToIndentedJson(o), Encoding.UTF8);
    }

    /// <summary>Reads a <c>trainer_state.json</c>; a missing field, a wrong type or a negative position names the
    /// file and the JSON path.</summary>
    public static TrainerState ReadTrainerState(string path)
    {
        var o = JsonFile.ParseObject(path);
        var pos = JsonFile.Object(o["data_position"], path, "$.data_position");
        int Count(JsonNode? node, string at, bool optional = false)
        {
            if (optional && node is null)
            {
                return 0; // a checkpoint from before this was recorded
            }

            var v = JsonFile.Value<int>(node, path, at);
            return v >= 0 ? v : throw new DpoSharpException($"{path}: {at} is {v}, expected a count ≥ 0; resume from another checkpoint.");
        }

        var state = new TrainerState
        {
            GlobalStep = Count(o["global_step"], "$.global_step"),
            Epoch = JsonFile.Value<double>(o["epoch"], path, "$.epoch"),
            TotalSteps = Count(o["max_steps"], "$.max_steps"),
            NumTokens = JsonFile.Value<long>(o["num_tokens"], path, "$.num_tokens"),
            DataEpoch = Count(pos["epoch"], "$.data_position.epoch"),
            MicroBatch = Count(pos["micro_batch"], "$.data_position.micro_batch"),
            Seed = JsonFile.Value<int>(pos["seed"], path, "$.data_position.seed"),
            PerDeviceTrainBatchSize = Count(pos["per_device_train_batch_size"], "$.data_position.per_device_train_batch_size", optional: true),
            GradientAccumulationSteps = Count(pos["gradient_accumulation_steps"], "$.data_position.gradient_accumulation_steps", optional: true),
            NumTrainPairs = Count(pos["num_train_pairs"], "$.data_position.num_train_pairs", optional: true),
            WorldSize = Count(pos["world_size"], "$.data_position.world_size", optional: true),
        };
        foreach (var (k, v) in JsonFile.Object(o["loss_state"], path, "$.loss_state"))
        {
            state.LossState[k] = JsonFile.Value<double>(v, path);
        }

        foreach (var e in JsonFile.Array(o["log_history"], path, "$.log_history"))
        {
            var m = new Dictionary<string, double>();
            int step = 0;
            foreach (var (k, v) in JsonFile.Object(e, path))
            {
                if (k == "step")
                {
                    step = JsonFile.Value<int>(v, path);
                }
                else
                {
                    m[k] = v is null ? double.NaN : JsonFile.Value<double>(v, path);
                }
            }

            state.LogHistory.Add(new TrainerLogEntry(step, m));
        }

        return state;
    }

    private static void SaveOptimizer(IReadOnlyList<(string Name, AdamW.State State)> optimizer, string dir)
    {
        var tensors = new List<(string Name, Tensor Tensor)>();
        var steps = new JsonArray();
        var names = new JsonArray();
        for (int i = 0; i < optimizer.Count; i++)
        {
            var s = optimizer[i].State;
            tensors.Add(($"exp_avg.{i}", s.exp_avg));
            tensors.Add(($"exp_avg_sq.{i}", s.exp_avg_sq));
            if (s.max_exp_avg_sq is not null)
            {
                tensors.Add(($"max_exp_avg_sq.{i}", s.max_exp_avg_sq));
            }

            steps.Add(s.step);
            names.Add(optimizer[i].Name);
        }

        SafeTensorsWriter.Write(Path.Combine(dir, OptimizerTensors), tensors);
        File.WriteAllText(Path.Combine(dir, OptimizerJson), ToIndentedJson(new JsonObject
        {
            ["type"] = "adamw",
            ["param_names"] = names,
            ["steps"] = steps,
        }));
    }

    /// <summary>
    /// Copies the AdamW state saved in checkpoint <paramref name="dir"/> into <paramref name="optimizer"/> (the
    /// states in parameter order, named). The names must match the saved ones, in order.
    /// </summary>
    public static void LoadOptimizerState(string dir, IReadOnlyList<(string Name, AdamW.State State)> optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var jsonPath = Path.Combine(dir, OptimizerJson);
        var meta = JsonFile.ParseObject(jsonPath);
        var names = JsonFile.Array(meta["param_names"], jsonPath).Select(n => JsonFile.Value<string>(n, jsonPath)).ToList();
        var steps = JsonFile.Array(meta["steps"], jsonPath).Select(n => JsonFile.Value<long>(n, jsonPath) is var v && v >= 0 ? v
            : throw new DpoSharpException($"{jsonPath}: {n!.GetPath()} is {v}, expected a step count ≥ 0; the optimizer state is corrupt. Resume from another checkpoint.")).ToList();
        if (steps.Count != names.Count)
        {
            throw new DpoSharpException($"{jsonPath}: {names.Count} param_names but {steps.Count} steps; the optimizer state is corrupt. Resume from another checkpoint.");
        }

        if (!names.SequenceEqual(optimizer.Select(o => o.Name)))
        {
            throw new DpoSharpException($"{jsonPath}: the optimizer state was saved for different parameters (the model or its trainable set changed); resume with the same model.");
        }

        var tensorsPath = Path.Combine(dir, OptimizerTensors);
        var tensors = ReadAllTensors(tensorsPath);
        try
        {
            // Every moment present with its parameter's exact shape (copy_ would broadcast a smaller one silently).
            Tensor Saved(string key, Tensor like, string param) =>
                !tensors.TryGetValue(key, out var t) ? throw new DpoSharpException($"{tensorsPath}: no tensor '{key}' (the AdamW state of {param}); the optimizer state is incomplete. Resume from another checkpoint.")
                : !t.shape.SequenceEqual(like.shape) ? throw new DpoSharpException($"{tensorsPath}: '{key}' has shape [{string.Join(", ", t.shape)}], {param} has [{string.Join(", ", like.shape)}]; resume with the same model, or from another checkpoint.")
                : t;

            using var _ = no_grad();
            for (int i = 0; i < optimizer.Count; i++)
            {
                var s = optimizer[i].State;
                var expAvg = Saved($"exp_avg.{i}", s.exp_avg, names[i]);
                var expAvgSq = Saved($"exp_avg_sq.{i}", s.exp_avg_sq, names[i]);
                s.step = steps[i];
                s.exp_avg.copy_(expAvg);
                s.exp_avg_sq.copy_(expAvgSq);
                if (s.max_exp_avg_sq is not null && tensors.ContainsKey($"max_exp_avg_sq.{i}"))
                {
                    s.max_exp_avg_sq.copy_(Saved($"max_exp_avg_sq.{i}", s.max_exp_avg_sq, names[i]));
                }
            }
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }
    }

    [GeneratedRegex(@"^checkpoint-(\d+)$")]
    private static partial Regex CheckpointName();

    [GeneratedRegex(@"^checkpoint-(\d+)(\.tmp)?$")]
    private static partial Regex CheckpointFolderName();

    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    /// <summary>Copies <see cref="ModelSaver.TokenizerFiles"/> found in <paramref name="source"/> (if any) into <paramref name="dir"/>.</summary>
    private static void CopyTokenizerFiles(string? source, string dir)
    {
        if (source is null || Path.GetFullPath(source) == Path.GetFullPath(dir))
        {
            return;
        }

        foreach (var file in ModelSaver.TokenizerFiles)
        {
            var from = Path.Combine(source, file);
            if (File.Exists(from))
            {
                File.Copy(from, Path.Combine(dir, file), overwrite: true);
            }
        }
    }

    /// <summary>Serialises a JSON node with indentation (the small JSON side files).</summary>
    private static string ToIndentedJson(JsonNode node) => node.ToJsonString(IndentedJson);

    /// <summary>Every tensor of a safetensors file, on the CPU; the caller disposes them.</summary>
    private static Dictionary<string, Tensor> ReadAllTensors(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        return file.ReadAll();
    }
}
