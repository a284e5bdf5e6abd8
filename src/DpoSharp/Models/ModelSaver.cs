using System.Text.Json;
using System.Text.Json.Nodes;
using DpoSharp.IO;
using static TorchSharp.torch;

namespace DpoSharp.Models;

/// <summary>Writes a model as a Hugging Face checkpoint directory transformers' <c>from_pretrained</c> loads.</summary>
public static class ModelSaver
{
    /// <summary>Default largest shard: 5 GB (transformers' default <c>max_shard_size</c>).</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>Name of the temporary folder inside the target directory that <see cref="Save"/> writes into first.</summary>
    public const string StagingFolderName = ".dposharp-save.tmp";

    /// <summary>Tokenizer files copied from the source directory when present.</summary>
    public static IReadOnlyList<string> TokenizerFiles { get; } =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
        "tokenizer.model", "added_tokens.json",
    ];

    /// <summary>
    /// Writes <c>config.json</c> (the original fields, with <c>torch_dtype</c> updated), the weights as safetensors
    /// (sharded above <paramref name="maxShardBytes"/> with <c>model.safetensors.index.json</c>; tied lm_head not
    /// written), <c>generation_config.json</c> (copied from <paramref name="copyTokenizerFrom"/> when present, else
    /// derived from the config) and the tokenizer files found in <paramref name="copyTokenizerFrom"/>.
    /// </summary>
    public static void Save(ICausalLM model, string directory, string? copyTokenizerFrom = null, long maxShardBytes = DefaultMaxShardBytes)
    {
        var m = model as CausalLMBase ?? throw new ArgumentException("Save supports models built by ModelLoader", nameof(model));
        Directory.CreateDirectory(directory);
        string? src = copyTokenizerFrom is null ? null : Path.GetFullPath(copyTokenizerFrom);
        bool sameDir = src is not null && src == Path.GetFullPath(directory);
        if (src is not null && !sameDir && !Directory.Exists(src))
        {
            throw new DpoSharpException($"{src}: tokenizer source directory not found.");
        }

        // Everything is written into a staging folder first and moved in only once complete, so a failure (disk
        // full, an I/O error) leaves a model already in the directory intact instead of half overwritten.
        var staging = Path.Combine(directory, StagingFolderName);
        if (Directory.Exists(staging))
        {
            Directory.Delete(staging, recursive: true);
        }

        Directory.CreateDirectory(staging);
        try
        {
            WriteFiles(model, m, staging, directory, src, sameDir, maxShardBytes);
            Commit(staging, directory);
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    private static void WriteFiles(ICausalLM model, CausalLMBase m, string staging, string directory, string? src, bool sameDir, long maxShardBytes)
    {
        var json = new JsonSerializerOptions { WriteIndented = true };
        var config = (JsonObject)model.Config.Raw.DeepClone();
        config["model_type"] = model.Config.ModelType;
        config["torch_dtype"] = m.DType switch
        {
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float16 => "float16",
            _ => "float32",
        };
        File.WriteAllText(Path.Combine(staging, "config.json"), config.ToJsonString(json));

        SafeTensorsCheckpoint.Write(staging, m.TensorsToSave(), maxShardBytes);

        if (src is not null && !sameDir)
        {
            foreach (var file in TokenizerFiles.Append("generation_config.json"))
            {
                var from = Path.Combine(src, file);
                if (File.Exists(from))
                {
                    File.Copy(from, Path.Combine(staging, file), overwrite: true);
                }
            }
        }

        var gen = Path.Combine(staging, "generation_config.json");
        if (!File.Exists(gen) && !File.Exists(Path.Combine(directory, "generation_config.json")))
        {
            var g = new JsonObject { ["_from_model_config"] = true };
            if (model.Config.BosTokenId is int bos)
            {
                g["bos_token_id"] = bos;
            }

            if (model.Config.EosTokenIds.Count == 1)
            {
                g["eos_token_id"] = model.Config.EosTokenIds[0];
            }
            else if (model.Config.EosTokenIds.Count > 1)
            {
                g["eos_token_id"] = new JsonArray(model.Config.EosTokenIds.Select(i => (JsonNode)i).ToArray());
            }

            if (model.Config.PadTokenId is int pad)
            {
                g["pad_token_id"] = pad;
            }

            File.WriteAllText(gen, g.ToJsonString(json));
        }
    }

    /// <summary>
    /// Moves the complete staged files into <paramref name="directory"/>: weights first (each move atomic), then
    /// removes weight files of an earlier save the new one does not have, then config and tokenizer files.
    /// </summary>
    private static void Commit(string staging, string directory)
    {
        static bool IsWeights(string name) =>
            (name.StartsWith("model", StringComparison.Ordinal) && name.EndsWith(".safetensors", StringComparison.Ordinal))
            || name == SafeTensorsCheckpoint.IndexFileName;

        var staged = Directory.EnumerateFiles(staging).Select(Path.GetFileName).OfType<string>().ToList();
        foreach (var name in staged.Where(IsWeights))
        {
            File.Move(Path.Combine(staging, name), Path.Combine(directory, name), overwrite: true);
        }

        foreach (var stale in Directory.EnumerateFiles(directory).Where(f => IsWeights(Path.GetFileName(f)) && !staged.Contains(Path.GetFileName(f))))
        {
            File.Delete(stale);
        }

        foreach (var name in staged.Where(n => !IsWeights(n)))
        {
            File.Move(Path.Combine(staging, name), Path.Combine(directory, name), overwrite: true);
        }
    }
}
