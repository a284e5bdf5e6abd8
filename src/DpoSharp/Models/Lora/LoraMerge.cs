using DpoSharp.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Models.Lora;

/// <summary>What <see cref="LoraMerge.MergeToCheckpoint"/> wrote.</summary>
/// <param name="OutputDirectory">The full path of the merged checkpoint.</param>
/// <param name="MergedLayers">The number of layers whose adapter was folded into the weights.</param>
/// <param name="Adapter">The adapter's settings (from its <c>adapter_config.json</c>).</param>
/// <param name="DType">The dtype of the written weights (the base checkpoint's).</param>
public sealed record LoraMergeResult(string OutputDirectory, int MergedLayers, LoraOptions Adapter, ScalarType DType);

/// <summary>
/// A PEFT LoRA adapter folded into its base model and written as a plain Hugging Face checkpoint (PEFT's
/// <c>merge_and_unload</c> + <c>save_pretrained</c>): the result loads with <see cref="ModelLoader.Load"/> or
/// transformers' <c>from_pretrained</c> without any adapter code.
/// </summary>
public static class LoraMerge
{
    /// <summary>
    /// Loads the base checkpoint in <paramref name="baseDir"/> (fp32), loads the PEFT adapter in
    /// <paramref name="adapterDir"/> into it (<see cref="PeftAdapter.Load"/>), folds W + (alpha / r)·B·A into every
    /// adapted weight (<see cref="LoraModel.Merge"/>, in fp32), and writes <c>config.json</c>, the weights (in the
    /// dtype the base checkpoint stores: F32, BF16 or F16; sharded above <paramref name="maxShardBytes"/>),
    /// <c>generation_config.json</c> and the base's tokenizer files (<see cref="ModelSaver.Save"/>) to
    /// <paramref name="outputDir"/>. The files are written into a temporary folder beside <paramref name="outputDir"/>
    /// that is renamed to it once complete, so a failure leaves no output folder (or, with
    /// <paramref name="overwrite"/>, the previous one intact).
    /// </summary>
    /// <param name="baseDir">The base model's Hugging Face checkpoint directory.</param>
    /// <param name="adapterDir">The adapter directory (<c>adapter_config.json</c>, <c>adapter_model.safetensors</c>).</param>
    /// <param name="outputDir">The folder to write; its parent folders are created.</param>
    /// <param name="device">Where the merge runs (default: the CPU).</param>
    /// <param name="overwrite">Replace <paramref name="outputDir"/> when it exists and is not empty.</param>
    /// <param name="maxShardBytes">Largest weights file (<see cref="ModelSaver.DefaultMaxShardBytes"/>).</param>
    /// <exception cref="DpoSharpException">A missing or invalid base or adapter directory, an adapter for another
    /// architecture or with other shapes, an output folder that is a file, holds an input or is not empty (without
    /// <paramref name="overwrite"/>); the message names the path.</exception>
    public static LoraMergeResult MergeToCheckpoint(string baseDir, string adapterDir, string outputDir, Device? device = null,
        bool overwrite = false, long maxShardBytes = ModelSaver.DefaultMaxShardBytes)
    {
        ArgumentNullException.ThrowIfNull(baseDir);
        ArgumentNullException.ThrowIfNull(adapterDir);
        ArgumentNullException.ThrowIfNull(outputDir);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxShardBytes, 1);

        // The cheap checks first: configs and the output folder, before (possibly gigabytes of) weights are read.
        if (!Directory.Exists(baseDir))
        {
            throw new DpoSharpException($"{baseDir}: base model directory not found.");
        }

        _ = ModelConfig.Load(baseDir);
        var options = PeftAdapter.ReadConfig(adapterDir);
        var output = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputDir));
        CheckOutput(output, outputDir, overwrite, ("base model", baseDir), ("adapter", adapterDir));
        var dtype = StoredDType(baseDir);

        using var model = ModelLoader.Load(baseDir, device);
        PeftAdapter.Load(model, adapterDir);
        int merged = model.Merge();
        if (dtype != ScalarType.Float32)
        {
            model.Module.to(dtype);
        }

        WriteDirectory(output, staging => ModelSaver.Save(model, staging, copyTokenizerFrom: baseDir, maxShardBytes: maxShardBytes));
        return new LoraMergeResult(output, merged, options, dtype);
    }

    /// <summary>
    /// The dtype the checkpoint in <paramref name="directory"/> stores its floating-point weights in: BF16 or F16
    /// when all of them are, else fp32.
    /// </summary>
    internal static ScalarType StoredDType(string directory)
    {
        using var checkpoint = SafeTensorsCheckpoint.Open(directory);
        var types = checkpoint.Names.Select(n => checkpoint.Info(n).ScalarType)
            .Where(t => t is ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16 or ScalarType.Float16)
            .Distinct()
            .ToList();
        return types is [ScalarType.BFloat16] or [ScalarType.Float16] ? types[0] : ScalarType.Float32;
    }

    private static void CheckOutput(string output, string given, bool overwrite, params (string What, string Dir)[] inputs)
    {
        if (File.Exists(output))
        {
            throw new DpoSharpException($"{given} is a file; give a folder for the merged model.");
        }

        foreach (var (what, dir) in inputs)
        {
            var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
            if (full == output || full.StartsWith(output + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new DpoSharpException($"{given} is {(full == output ? "" : "a parent of ")}the {what} directory {dir}: writing the merged model there would replace it. Choose another output folder.");
            }
        }

        if (!overwrite && Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
        {
            throw new DpoSharpException($"{given} already exists and is not empty; choose another output folder, or replace it (--overwrite).");
        }
    }

    /// <summary>
    /// Runs <paramref name="write"/> on a fresh temporary folder beside <paramref name="output"/> and renames it to
    /// <paramref name="output"/> once complete (a previous <paramref name="output"/> is moved aside first and deleted
    /// after the rename; put back if the rename fails). The temporary folder never outlives a failure.
    /// </summary>
    private static void WriteDirectory(string output, Action<string> write)
    {
        var parent = Path.GetDirectoryName(output) ?? throw new DpoSharpException($"{output}: cannot write a model to a file system root.");
        Directory.CreateDirectory(parent);
        var name = Path.GetFileName(output);
        var tag = Guid.NewGuid().ToString("N")[..8];
        var staging = Path.Combine(parent, $".{name}.merge-{tag}.tmp");
        string? previous = null;
        try
        {
            Directory.CreateDirectory(staging);
            write(staging);
            if (Directory.Exists(output))
            {
                previous = Path.Combine(parent, $".{name}.old-{tag}.tmp");
                Directory.Move(output, previous);
            }

            try
            {
                Directory.Move(staging, output);
            }
            catch when (previous is not null)
            {
                Directory.Move(previous, output);
                previous = null;
                throw;
            }
        }
        finally
        {
            foreach (var dir in new[] { staging, previous })
            {
                if (dir is not null && Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
        }
    }
}
