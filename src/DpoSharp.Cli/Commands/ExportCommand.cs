using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DpoSharp.Export;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>dposharp export</c>: writes a model (optionally with a LoRA adapter merged in) as a GGUF file for llama.cpp,
/// LLamaSharp, Ollama and LM Studio (<see cref="GgufExporter.Export"/>).
/// </summary>
public static class ExportCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (Hugging Face checkpoint with its tokenizer files), e.g. a training run's output or a merged model.", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter directory to merge into --model before exporting." };
        var format = new Option<string>("--format") { Description = "Output format: gguf.", DefaultValueFactory = _ => "gguf" };
        var output = new Option<string>("--output") { Description = "The GGUF file to write; written to a temporary file beside it and renamed when complete.", Required = true };
        var outtype = new Option<string>("--outtype") { Description = "Weight type: f32 (exact), f16, or q8_0 (8-bit blocks of 32; norms and biases stay f32).", DefaultValueFactory = _ => "f16" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace --output when it exists." };
        var cmd = new Command("export", "Export a model (optionally merging a LoRA adapter first) as a GGUF file for llama.cpp, LLamaSharp, Ollama or LM Studio.")
        {
            model, adapter, format, output, outtype, overwrite,
        };
        cmd.SetAction(parse =>
        {
            GgufExporter.CheckFormat(parse.GetValue(format)!);
            var type = GgufExporter.ParseOutType(parse.GetValue(outtype)!);
            var sw = Stopwatch.StartNew();
            var r = GgufExporter.Export(parse.GetValue(model)!, parse.GetValue(output)!, type, parse.GetValue(adapter), parse.GetValue(overwrite));
            var err = parse.InvocationConfiguration.Error;
            foreach (var warning in r.Warnings)
            {
                err.WriteLine("warning: " + warning);
            }

            err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"exported {r.Architecture} ({r.TensorCount} tensors, {r.OutType.ToString().ToLowerInvariant()}{(r.MergedLayers > 0 ? $", {r.MergedLayers} LoRA layers merged" : "")}) in {sw.Elapsed.TotalSeconds:F1} s -> {r.OutputPath} ({r.Bytes / 1048576.0:F1} MiB)"));
            return 0;
        });
        return cmd;
    }
}
