using DpoSharp.IO;
using DpoSharp.IO.Gguf;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Export;

/// <summary>The type <see cref="GgufExporter"/> stores the weight matrices in (<c>--outtype</c>).</summary>
public enum GgufOutType
{
    /// <summary>fp32: every tensor as stored in DpoSharp (exact).</summary>
    F32,

    /// <summary>fp16 weight matrices; norms, biases and position embeddings stay fp32.</summary>
    F16,

    /// <summary>ggml's Q8_0 (8-bit blocks of 32 with an f16 scale) weight matrices; norms, biases and position
    /// embeddings stay fp32; a matrix whose rows are not whole blocks is stored fp16 (as the converter does).</summary>
    Q8_0,
}

/// <summary>What <see cref="GgufExporter.Export"/> wrote.</summary>
/// <param name="OutputPath">The full path of the GGUF file.</param>
/// <param name="Architecture">The <c>general.architecture</c> written (llama, qwen2, phi2, gpt2).</param>
/// <param name="OutType">The weight type.</param>
/// <param name="TensorCount">Tensors written.</param>
/// <param name="Bytes">The file's size.</param>
/// <param name="MergedLayers">Layers whose LoRA adapter was merged first (0 without <c>--adapter</c>).</param>
/// <param name="Warnings">What could not be carried over exactly (shown to the user).</param>
public sealed record GgufExportResult(string OutputPath, string Architecture, GgufOutType OutType, int TensorCount, long Bytes,
    int MergedLayers, IReadOnlyList<string> Warnings);

/// <summary>
/// Writes a DpoSharp model (a Hugging Face checkpoint directory, optionally with a PEFT LoRA adapter merged in first)
/// as one GGUF v3 file that llama.cpp, LLamaSharp, Ollama and LM Studio load: the metadata, tensor names, layouts and
/// tokenizer llama.cpp's <c>convert_hf_to_gguf.py</c> writes for the architecture (llama and mistral as
/// <c>llama</c>, qwen2, phi as <c>phi2</c>, gpt2).
/// </summary>
public static class GgufExporter
{
    /// <summary>The <c>--outtype</c> names.</summary>
    public static IReadOnlyList<string> OutTypeNames { get; } = ["f32", "f16", "q8_0"];

    /// <summary>Parses an <c>--outtype</c> name (f32, f16, q8_0; case-insensitive).</summary>
    /// <exception cref="DpoSharpException">Another name.</exception>
    public static GgufOutType ParseOutType(string name) => name?.ToLowerInvariant() switch
    {
        "f32" or "float32" => GgufOutType.F32,
        "f16" or "float16" => GgufOutType.F16,
        "q8_0" => GgufOutType.Q8_0,
        _ => throw new DpoSharpException($"--outtype '{name}' is not supported; use one of {string.Join(", ", OutTypeNames)}."),
    };

    /// <summary>Parses a <c>--format</c> name; only <c>gguf</c> exists.</summary>
    /// <exception cref="DpoSharpException">Another name.</exception>
    public static void CheckFormat(string format)
    {
        if (!string.Equals(format, "gguf", StringComparison.OrdinalIgnoreCase))
        {
            throw new DpoSharpException($"--format '{format}' is not supported; the export format is gguf (for llama.cpp, LLamaSharp, Ollama, LM Studio).");
        }
    }

    /// <summary>
    /// Exports the model in <paramref name="modelDir"/> (with the PEFT adapter in <paramref name="adapterDir"/> merged
    /// in first, when given) to <paramref name="outputPath"/>. The file is written to a temporary file beside it and
    /// renamed once complete: a failure leaves no output file (and, with <paramref name="overwrite"/>, the previous
    /// one intact).
    /// </summary>
    /// <exception cref="DpoSharpException">A missing model or adapter folder, a config or tokenizer GGUF cannot
    /// express (the message says what and what to do), an output path that is a folder or exists (without
    /// <paramref name="overwrite"/>).</exception>
    public static GgufExportResult Export(string modelDir, string outputPath, GgufOutType outType, string? adapterDir = null, bool overwrite = false)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        ArgumentNullException.ThrowIfNull(outputPath);
        if (!Directory.Exists(modelDir))
        {
            throw new DpoSharpException($"{modelDir}: model directory not found. --model must be a Hugging Face model directory (config.json, safetensors weights, tokenizer files).");
        }

        var config = ModelConfig.Load(modelDir);
        if (adapterDir is not null)
        {
            _ = PeftAdapter.ReadConfig(adapterDir);
        }

        var output = Path.GetFullPath(outputPath);
        if (Directory.Exists(output))
        {
            throw new DpoSharpException($"{outputPath} is a folder; give a file name for the GGUF file, e.g. {Path.Combine(outputPath, "model.gguf")}.");
        }

        if (File.Exists(output) && !overwrite)
        {
            throw new DpoSharpException($"{outputPath} already exists; choose another file name, or replace it (--overwrite).");
        }

        var plan = GgufModelPlan.Create(config, modelDir);
        var vocab = GgufVocabulary.Read(modelDir, config, config.VocabSize);

        using var model = ModelLoader.Load(modelDir, dtype: adapterDir is null ? LoraMerge.StoredDType(modelDir) : ScalarType.Float32);
        int merged = 0;
        if (adapterDir is not null)
        {
            PeftAdapter.Load(model, adapterDir);
            merged = model.Merge();
        }

        var writer = new GgufWriter();
        writer.AddString("general.architecture", plan.Architecture);
        writer.AddString("general.type", "model");
        writer.AddString("general.name", GeneralName(modelDir));
        plan.WriteHyperparameters(writer);
        writer.AddUInt32("general.file_type", (uint)(outType switch
        {
            GgufOutType.F16 => GgufFileType.MostlyF16,
            GgufOutType.Q8_0 => GgufFileType.MostlyQ8_0,
            _ => GgufFileType.AllF32,
        }));
        writer.AddUInt32("general.quantization_version", 2);
        vocab.WriteTo(writer);

        var tensors = ((CausalLMBase)model).TensorsToSave();
        foreach (var t in plan.MapTensors(tensors))
        {
            var type = StoredType(t.Name, t.Shape, outType);
            writer.AddTensor(new GgufTensor(t.Name, t.Shape, type, () => GgmlQuantization.Encode(type, t.Values())));
        }

        var parent = Path.GetDirectoryName(output)!;
        Directory.CreateDirectory(parent);
        AtomicFile.Write(output, writer.WriteTo, overwrite, flushToDisk: true);

        return new GgufExportResult(output, plan.Architecture, outType, writer.Tensors.Count, new FileInfo(output).Length, merged,
            [.. plan.Warnings, .. vocab.Warnings]);
    }

    /// <summary>
    /// The type a tensor is stored in, by the converter's rules: 1-D tensors, norms, biases and position embeddings
    /// fp32; other weights in <paramref name="outType"/>, Q8_0 falling back to fp16 where rows are not whole blocks.
    /// </summary>
    /// <param name="name">The GGUF tensor name.</param>
    /// <param name="shape">Its shape, outermost first.</param>
    /// <param name="outType">The requested weight type.</param>
    public static GgmlType StoredType(string name, long[] shape, GgufOutType outType)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        bool keepF32 = shape.Length <= 1 || name.EndsWith("_norm.weight", StringComparison.Ordinal)
            || !name.EndsWith(".weight", StringComparison.Ordinal) || name.StartsWith("position_embd.", StringComparison.Ordinal);
        if (keepF32)
        {
            return GgmlType.F32;
        }

        return outType switch
        {
            GgufOutType.F16 => GgmlType.F16,
            GgufOutType.Q8_0 => GgmlQuantization.Fits(GgmlType.Q8_0, shape[^1]) ? GgmlType.Q8_0 : GgmlType.F16,
            _ => GgmlType.F32,
        };
    }

    private static string GeneralName(string modelDir)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir)));
        return string.IsNullOrEmpty(name) ? "model" : name;
    }
}
