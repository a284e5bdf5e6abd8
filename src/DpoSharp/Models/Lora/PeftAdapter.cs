using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DpoSharp.IO;
using static TorchSharp.torch;

namespace DpoSharp.Models.Lora;

/// <summary>
/// PEFT's adapter directory: <c>adapter_config.json</c> (<c>peft_type</c> LORA, <c>r</c>, <c>lora_alpha</c>,
/// <c>lora_dropout</c>, <c>target_modules</c>, <c>bias</c>, <c>task_type</c> CAUSAL_LM, <c>base_model_name_or_path</c>,
/// and PEFT's other keys at their defaults) and <c>adapter_model.safetensors</c> with the keys
/// <c>base_model.model.&lt;module path&gt;.lora_A.weight</c> (r × in) and <c>.lora_B.weight</c> (out × r), the module
/// path being the Hugging Face one (<c>model.layers.0.self_attn.q_proj</c>, GPT-2: <c>transformer.h.0.attn.c_attn</c>).
/// <c>PeftModel.from_pretrained</c> loads what <see cref="Save"/> writes, and <see cref="Load"/> reads PEFT's files.
/// </summary>
public static partial class PeftAdapter
{
    /// <summary>The adapter's config file.</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>The adapter's weights file.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>The prefix of every weight key (PEFT's <c>PeftModel</c> → <c>LoraModel</c> → the transformers model).</summary>
    public const string KeyPrefix = "base_model.model.";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>True when <paramref name="directory"/> holds an <c>adapter_config.json</c>.</summary>
    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, ConfigFileName));

    /// <summary>The key of a layer's <c>lora_A</c> (<paramref name="b"/> false) or <c>lora_B</c> weight.</summary>
    public static string WeightKey(string modulePath, bool b) => $"{KeyPrefix}{modulePath}.lora_{(b ? 'B' : 'A')}.weight";

    /// <summary>
    /// Writes the model's adapters into <paramref name="directory"/> (created): <c>adapter_model.safetensors</c>
    /// (the adapters' dtype) and <c>adapter_config.json</c>, each replaced atomically. Nothing else is written.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no adapters.</exception>
    public static void Save(ICausalLM model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        var targets = model.Targets();
        if (targets.Count == 0)
        {
            throw new InvalidOperationException("the model has no LoRA adapters to save.");
        }

        var options = model.Options()!;
        Directory.CreateDirectory(directory);
        var tensors = new List<(string Name, Tensor Tensor)>();
        foreach (var t in targets)
        {
            tensors.Add((WeightKey(t.Path, b: false), t.Adapter.A));
            tensors.Add((WeightKey(t.Path, b: true), t.Adapter.B));
        }

        SafeTensorsWriter.Write(Path.Combine(directory, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });

        var config = new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = options.BaseModelNameOrPath,
            ["bias"] = options.Bias,
            ["fan_in_fan_out"] = targets.Any(t => t.Layer.FanInFanOut),
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["lora_alpha"] = NumberNode(options.LoraAlpha),
            ["lora_dropout"] = options.LoraDropout,
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            ["r"] = options.R,
            ["rank_pattern"] = new JsonObject(),
            ["revision"] = null,
            ["target_modules"] = new JsonArray([.. options.TargetModules.Select(n => (JsonNode)n)]),
            ["task_type"] = "CAUSAL_LM",
            ["use_dora"] = false,
            ["use_rslora"] = false,
        };
        var path = Path.Combine(directory, ConfigFileName);
        File.WriteAllText(path + ".tmp", config.ToJsonString(Indented));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>
    /// Reads and checks <c>adapter_config.json</c> of <paramref name="directory"/> (PEFT's defaults for absent keys:
    /// r 8, lora_alpha 8, lora_dropout 0). Only plain LoRA is accepted: no DoRA, rsLoRA, rank/alpha patterns,
    /// modules_to_save or trained biases.
    /// </summary>
    /// <exception cref="DpoSharpException">A missing or invalid file; the message names the file and the field.</exception>
    public static LoraOptions ReadConfig(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
        {
            throw new DpoSharpException($"{directory}: adapter directory not found.");
        }

        var path = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(path))
        {
            throw new DpoSharpException($"{directory}: no {ConfigFileName}, so this is not a PEFT adapter directory (a LoRA run writes {ConfigFileName} and {WeightsFileName}).");
        }

        var o = IO.JsonFile.ParseObject(path);

        try
        {
            var peftType = o["peft_type"]?.GetValue<string>();
            if (peftType != "LORA")
            {
                throw new DpoSharpException($"{path}: peft_type is {(peftType is null ? "missing" : $"'{peftType}'")}; only LoRA adapters (peft_type \"LORA\") are supported.");
            }

            foreach (var flag in new[] { "use_dora", "use_rslora" })
            {
                if (o[flag] is JsonValue v && v.GetValueKind() == JsonValueKind.True)
                {
                    throw new DpoSharpException($"{path}: {flag} is true; only plain LoRA (scaling alpha / r, no DoRA) is supported.");
                }
            }

            foreach (var pattern in new[] { "rank_pattern", "alpha_pattern" })
            {
                if (o[pattern] is JsonObject p && p.Count > 0)
                {
                    throw new DpoSharpException($"{path}: {pattern} is not empty; per-layer ranks or alphas are not supported.");
                }
            }

            if (o["modules_to_save"] is JsonArray { Count: > 0 } mts)
            {
                throw new DpoSharpException($"{path}: modules_to_save ({string.Join(", ", mts)}) is not supported: the adapter would carry full copies of those layers.");
            }

            var options = new LoraOptions
            {
                R = o["r"] is null ? 8 : o["r"]!.GetValue<int>(),
                LoraAlpha = o["lora_alpha"] is null ? 8 : o["lora_alpha"]!.GetValue<double>(),
                LoraDropout = o["lora_dropout"] is null ? 0 : o["lora_dropout"]!.GetValue<double>(),
                Bias = o["bias"]?.GetValue<string>() ?? LoraOptions.BiasNone,
                BaseModelNameOrPath = o["base_model_name_or_path"]?.GetValue<string>(),
                TargetModules = o["target_modules"] switch
                {
                    JsonArray a => [.. a.Select(n => JsonFile.Value<string>(n, path))],
                    JsonValue v when v.GetValue<string>() == LoraOptions.AllLinear => [LoraOptions.AllLinear],
                    _ => [], // a regular expression, or none: the weight keys say which layers are adapted
                },
            };
            try
            {
                options.Validate();
            }
            catch (DpoSharpException e)
            {
                throw new DpoSharpException($"{path}: {e.Message}", e);
            }

            return options;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new DpoSharpException($"{path}: a field has the wrong type ({e.Message}); expected PEFT's adapter_config.json (r: integer, lora_alpha and lora_dropout: numbers, target_modules: a list of names).", e);
        }
    }

    /// <summary>
    /// Loads the PEFT adapter in <paramref name="directory"/> into <paramref name="model"/>. A model without adapters
    /// gets one on every layer the weight keys name (and its base is frozen, as <see cref="LoraModel.Inject"/> does);
    /// a model with adapters (resuming a LoRA run) must have exactly the file's layers and rank, and its adapters'
    /// values are replaced. Weights are converted to the adapters' dtype and device.
    /// </summary>
    /// <returns>The layers that carry an adapter.</returns>
    /// <exception cref="DpoSharpException">A missing or invalid config, a missing weights file, a key that is not a
    /// LoRA weight or names no linear layer of the model, a missing lora_A/lora_B, a wrong shape, non-finite values,
    /// or (resuming) a different set of layers; the message names the file and the key.</exception>
    public static IReadOnlyList<LoraTarget> Load(ICausalLM model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        var options = ReadConfig(directory);
        var weightsPath = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(weightsPath))
        {
            var bin = File.Exists(Path.Combine(directory, "adapter_model.bin")) ? " It has adapter_model.bin (pickle), which is not read: re-save the adapter with safetensors (PEFT's default)." : "";
            throw new DpoSharpException($"{directory}: {WeightsFileName} is missing.{bin}");
        }

        using var file = SafeTensorsFile.Open(weightsPath);
        var keys = GroupKeys(weightsPath, file.Tensors.Keys);
        var layers = model.LinearLayers();
        int r = options.R;
        foreach (var (path, (keyA, keyB)) in keys)
        {
            if (keyA is null || keyB is null)
            {
                throw new DpoSharpException($"{weightsPath}: '{keyA ?? keyB}' has no matching '{WeightKey(path, b: keyA is not null)}': every adapted layer needs both lora_A and lora_B.");
            }

            if (!layers.TryGetValue(path, out var layer))
            {
                throw new DpoSharpException($"{weightsPath}: tensor '{keyA}' adapts '{path}', which is not a linear layer of this {model.Config.ModelType} model. " +
                    $"Is the adapter for another base model{(options.BaseModelNameOrPath is { } b ? $" ({b})" : "")}?");
            }

            CheckShape(weightsPath, keyA, file.Tensors[keyA].Shape, [r, layer.InFeatures], $"lora_A of {path} must be r × in = {r} × {layer.InFeatures} (r from {ConfigFileName})");
            CheckShape(weightsPath, keyB, file.Tensors[keyB].Shape, [layer.OutFeatures, r], $"lora_B of {path} must be out × r = {layer.OutFeatures} × {r} (r from {ConfigFileName})");
        }

        bool injected = !model.HasAdapters();
        if (injected)
        {
            LoraModel.Attach(model, [.. keys.Keys], options, seed: 0);
        }
        else
        {
            CheckSameAdapters(model, directory, options, keys.Keys);
        }

        try
        {
            var targets = model.Targets();
            var nonFinite = new List<string>();
            foreach (var t in targets)
            {
                var (keyA, keyB) = keys[t.Path];
                file.ReadInto(keyA!, t.Adapter.A);
                file.ReadInto(keyB!, t.Adapter.B);
                using (NewDisposeScope())
                {
                    nonFinite.AddRange(new[] { (keyA!, t.Adapter.A), (keyB!, t.Adapter.B) }.Where(x => !x.Item2.isfinite().all().item<bool>()).Select(x => x.Item1));
                }
            }

            if (nonFinite.Count > 0)
            {
                throw new DpoSharpException($"{weightsPath}: {nonFinite.Count} tensor(s) hold NaN or infinite values, e.g. {string.Join(", ", nonFinite.Take(3))}; the adapter was saved from a diverged run.");
            }

            return targets;
        }
        catch
        {
            if (injected)
            {
                model.RemoveAdapters();
            }

            throw;
        }
    }

    /// <summary>Keys by module path, in file order: (lora_A key, lora_B key).</summary>
    private static Dictionary<string, (string? A, string? B)> GroupKeys(string weightsPath, IEnumerable<string> names)
    {
        var keys = new Dictionary<string, (string? A, string? B)>(StringComparer.Ordinal);
        foreach (var key in names)
        {
            var m = KeyPattern().Match(key);
            if (!m.Success)
            {
                throw new DpoSharpException($"{weightsPath}: tensor '{key}' is not a LoRA weight ({KeyPrefix}<module>.lora_A.weight / .lora_B.weight); " +
                    "adapters with trained biases, embedding adapters or modules_to_save are not supported.");
            }

            var path = m.Groups["path"].Value;
            var entry = keys.GetValueOrDefault(path);
            keys[path] = m.Groups["ab"].Value == "A" ? entry with { A = key } : entry with { B = key };
        }

        if (keys.Count == 0)
        {
            throw new DpoSharpException($"{weightsPath}: the file holds no LoRA weights.");
        }

        return keys;
    }

    private static void CheckShape(string file, string key, long[] shape, long[] expected, string what)
    {
        if (!shape.SequenceEqual(expected))
        {
            throw new DpoSharpException($"{file}: tensor '{key}' has shape [{string.Join(", ", shape)}], but {what}. Does the adapter belong to this base model and its {ConfigFileName}?");
        }
    }

    private static void CheckSameAdapters(ICausalLM model, string directory, LoraOptions options, IEnumerable<string> paths)
    {
        var have = model.Targets();
        var file = paths.ToHashSet(StringComparer.Ordinal);
        var missing = have.Select(t => t.Path).Where(p => !file.Contains(p)).ToList();
        var extra = file.Where(p => have.All(t => t.Path != p)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
        {
            throw new DpoSharpException($"{directory}: the adapter covers other layers than this model's adapters " +
                $"({(missing.Count > 0 ? $"missing e.g. {missing[0]}" : $"extra e.g. {extra[0]}")}); use the same LoRA target modules as the run that wrote it.");
        }

        var a = have[0].Adapter;
        if (a.Rank != options.R || a.Alpha != options.LoraAlpha)
        {
            throw new DpoSharpException($"{Path.Combine(directory, ConfigFileName)}: r {options.R} and lora_alpha {options.LoraAlpha.ToString(CultureInfo.InvariantCulture)} differ from this model's adapters " +
                $"(r {a.Rank}, lora_alpha {a.Alpha.ToString(CultureInfo.InvariantCulture)}); use the same LoRA settings as the run that wrote it.");
        }
    }

    private static JsonNode NumberNode(double v) =>
        v == Math.Floor(v) && Math.Abs(v) < int.MaxValue ? JsonValue.Create((int)v) : JsonValue.Create(v);

    // PEFT writes lora_A.weight; older or hand-made files may keep the adapter name (lora_A.default.weight).
    [GeneratedRegex(@"^base_model\.model\.(?<path>.+)\.lora_(?<ab>[AB])(\.[A-Za-z0-9_\-]+)?\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPattern();
}
