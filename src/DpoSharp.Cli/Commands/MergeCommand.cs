using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DpoSharp.Models.Lora;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>dposharp merge</c>: folds a PEFT LoRA adapter into its base model and writes a plain Hugging Face checkpoint
/// (<see cref="LoraMerge.MergeToCheckpoint"/>).
/// </summary>
public static class MergeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Base model directory (Hugging Face checkpoint) the adapter was trained on.", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), e.g. the output of a LoRA training run.", Required = true };
        var outputDir = new Option<string>("--output-dir") { Description = "Folder for the merged checkpoint (config.json, safetensors weights in the base's dtype, generation_config.json, the base's tokenizer files); written to a temporary folder beside it and renamed when complete.", Required = true };
        var device = DeviceOption.Create();
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace --output-dir when it exists and is not empty." };
        var cmd = new Command("merge", "Merge a LoRA adapter into its base model (W + alpha/r·B·A) and write a full Hugging Face checkpoint.")
        {
            model, adapter, outputDir, device, overwrite,
        };
        cmd.SetAction(parse =>
        {
            var dev = DeviceOption.Resolve(parse.GetValue(device));
            var sw = Stopwatch.StartNew();
            var r = LoraMerge.MergeToCheckpoint(parse.GetValue(model)!, parse.GetValue(adapter)!, parse.GetValue(outputDir)!, dev, parse.GetValue(overwrite));
            parse.InvocationConfiguration.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"merged {r.MergedLayers} LoRA layers (r {r.Adapter.R}, lora_alpha {r.Adapter.LoraAlpha}) in {sw.Elapsed.TotalSeconds:F1} s -> {r.OutputDirectory} ({r.DType.ToString().ToLowerInvariant()})"));
            return 0;
        });
        return cmd;
    }
}
