using DpoSharp.Training;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// The output_dir rules of the training commands (<c>train</c>, <c>sft</c>): one run per folder, as transformers'
/// scripts do. A fresh run (no <c>--resume</c> / <c>resume_from_checkpoint</c>) into an output_dir that holds an earlier
/// run (checkpoints, or a saved model) would overwrite some of it and leave the rest — checkpoints a later
/// <c>--resume</c> would pick up, metrics of another run next to the old model — so it is refused unless
/// <c>overwrite_output_dir</c> is set; then the old checkpoints are deleted once the run has loaded.
/// </summary>
public static class RunFolder
{
    /// <summary>
    /// Throws <see cref="DpoSharpException"/> when another run is training into output_dir (<see cref="DpoSharp.Training.Engine.RunLock"/>), when output_dir is a file, is one of <paramref name="inputs"/> (named
    /// model directories the trained model would overwrite), or holds an earlier run that this fresh run would mix
    /// with (unless <c>overwrite_output_dir</c>). Call before any work.
    /// </summary>
    public static void ThrowIfEarlierRun(TrainingOptions options, params (string Name, string? Dir)[] inputs)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (File.Exists(options.OutputDir))
        {
            throw new DpoSharpException($"output_dir {options.OutputDir} is a file; give a folder for the model, checkpoints and metrics.");
        }

        DpoSharp.Training.Engine.RunLock.ThrowIfHeld(options.OutputDir); // another run is training into it now

        foreach (var (name, dir) in inputs)
        {
            if (dir is not null && string.Equals(Path.GetFullPath(dir).TrimEnd('/'), Path.GetFullPath(options.OutputDir).TrimEnd('/'), StringComparison.Ordinal))
            {
                throw new DpoSharpException($"output_dir {options.OutputDir} is the {name} directory; the trained model would overwrite it. Choose another --output-dir.");
            }
        }

        if (options.Resume || options.ResumeFromCheckpoint is not null || !Directory.Exists(options.OutputDir))
        {
            return;
        }

        var checkpoints = Directory.EnumerateDirectories(options.OutputDir, "checkpoint-*")
            .Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();
        var model = Directory.EnumerateFiles(options.OutputDir, "model*.safetensors")
            .Concat(Directory.EnumerateFiles(options.OutputDir, DpoSharp.Models.Lora.PeftAdapter.WeightsFileName))
            .Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).FirstOrDefault();
        if (checkpoints.Count == 0 && model is null)
        {
            return;
        }

        if (!options.OverwriteOutputDir)
        {
            var what = string.Join(", ", checkpoints.Where(c => !c.EndsWith(".tmp", StringComparison.Ordinal)).Take(5).Prepend(model).OfType<string>());
            throw new DpoSharpException($"output_dir {options.OutputDir} already holds an earlier run ({what}). " +
                "Continue it with --resume, choose another --output-dir, or pass --overwrite-output-dir to replace it.");
        }
    }

    /// <summary>Throws <see cref="DpoSharpException"/> when <c>adapter</c> is set but is not a PEFT adapter folder, or is
    /// the output_dir (the run would overwrite the adapter it starts from).</summary>
    public static void ThrowIfAdapterMissing(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Adapter is not { } dir)
        {
            return;
        }

        if (!Directory.Exists(dir))
        {
            throw new DpoSharpException($"adapter directory {dir} does not exist; give a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors), e.g. the output_dir of a --use-peft run.");
        }

        if (!DpoSharp.Models.Lora.PeftAdapter.Exists(dir))
        {
            throw new DpoSharpException($"adapter directory {dir} has no {DpoSharp.Models.Lora.PeftAdapter.ConfigFileName}; give a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors).");
        }

        if (string.Equals(Path.GetFullPath(dir).TrimEnd('/'), Path.GetFullPath(options.OutputDir).TrimEnd('/'), StringComparison.Ordinal))
        {
            throw new DpoSharpException($"output_dir {options.OutputDir} is the adapter directory; the trained adapter would overwrite it. Choose another --output-dir.");
        }
    }

    /// <summary>With <c>overwrite_output_dir</c> on a fresh run: deletes the earlier run's checkpoints (call once the
    /// model and data have loaded, so a run that fails before training deletes nothing).</summary>
    public static void DeleteEarlierCheckpoints(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.OverwriteOutputDir || options.Resume || options.ResumeFromCheckpoint is not null || !Directory.Exists(options.OutputDir))
        {
            return;
        }

        foreach (var c in Directory.EnumerateDirectories(options.OutputDir, "checkpoint-*"))
        {
            Directory.Delete(c, recursive: true);
        }
    }
}
