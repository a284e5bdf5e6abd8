using System.Runtime.CompilerServices;
using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Models.Lora;

/// <summary>A linear layer of a model that carries a LoRA adapter.</summary>
/// <param name="Path">The Hugging Face module path (e.g. <c>model.layers.0.self_attn.q_proj</c>,
/// <c>transformer.h.0.attn.c_attn</c>).</param>
/// <param name="Layer">The layer.</param>
public sealed record LoraTarget(string Path, ILoraTarget Layer)
{
    /// <summary>The layer's adapter.</summary>
    public LoraAdapter Adapter => Layer.Lora ?? throw new InvalidOperationException($"{Path} has no LoRA adapter");
}

/// <summary>Parameter counts of a model (PEFT's <c>print_trainable_parameters</c>).</summary>
/// <param name="Trainable">Elements of the parameters with <c>requires_grad</c>.</param>
/// <param name="Total">Elements of every parameter (adapters included).</param>
public readonly record struct ParameterCount(long Trainable, long Total)
{
    /// <summary>Trainable share of all parameters, in percent.</summary>
    public double TrainablePercent => Total == 0 ? 0 : 100.0 * Trainable / Total;
}

/// <summary>
/// LoRA on a causal LM, in place and without a second copy of the weights: <see cref="Inject"/> attaches a
/// <see cref="LoraAdapter"/> to the selected linear layers (their state-dict names stay the Hugging Face ones) and
/// freezes every base parameter, so only the adapters get gradients and optimizer state; <see cref="DisableAdapters"/>
/// gives the base model back for the DPO reference; <see cref="Merge"/> folds W + (alpha / r)·B·A into the base weights.
/// The adapters are found by walking the module tree, so any <see cref="ICausalLM"/> whose linear layers are
/// <see cref="ILoraTarget"/>s works. Files: <see cref="PeftAdapter"/>.
/// </summary>
public static class LoraModel
{
    /// <summary>The output layer, never a LoRA target.</summary>
    private const string LmHead = "lm_head";

    // The settings an adapter set was made with (for adapter_config.json), per model module.
    private static readonly ConditionalWeakTable<nn.Module, LoraOptions> Settings = new();

    /// <summary>
    /// Attaches a fresh adapter (A Kaiming-uniform from <paramref name="seed"/>, B = 0: the model's outputs are
    /// unchanged) to every linear layer <see cref="LoraOptions.TargetModules"/> selects, and freezes every other
    /// parameter (<c>requires_grad = false</c>). Inject before building a trainer: trainers optimise the parameters
    /// that have <c>requires_grad</c>. Adapters of fp16/bf16 layers are fp32 (PEFT's <c>autocast_adapter_dtype</c>).
    /// </summary>
    /// <returns>The layers that got an adapter, in module order.</returns>
    /// <exception cref="DpoSharpException">Invalid options, a target name that matches no linear layer, or a model
    /// that already has adapters.</exception>
    public static IReadOnlyList<LoraTarget> Inject(this ICausalLM model, LoraOptions options, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (model.HasAdapters())
        {
            throw new DpoSharpException("the model already has LoRA adapters; merge or remove them before injecting new ones.");
        }

        return Attach(model, ResolveTargets(model, options), options, seed);
    }

    /// <summary>The layers that carry an adapter, in module order (empty for a plain model).</summary>
    public static IReadOnlyList<LoraTarget> Targets(this ICausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return [.. model.Module.named_modules()
            .Where(m => m.module is ILoraTarget { Lora: not null })
            .Select(m => new LoraTarget(m.name, (ILoraTarget)m.module))];
    }

    /// <summary>True when any layer carries an adapter.</summary>
    public static bool HasAdapters(this ICausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Module.modules().Any(m => m is ILoraTarget { Lora: not null });
    }

    /// <summary>The settings of the model's adapters (as injected or loaded; target_modules as the distinct layer
    /// names that carry one), or null without adapters.</summary>
    public static LoraOptions? Options(this ICausalLM model)
    {
        var targets = model.Targets();
        if (targets.Count == 0)
        {
            return null;
        }

        var first = targets[0].Adapter;
        var o = Settings.TryGetValue(model.Module, out var s) ? s.Clone() : new LoraOptions { R = first.Rank, LoraAlpha = first.Alpha, LoraDropout = first.DropoutProbability };
        o.TargetModules = [.. targets.Select(t => LastSegment(t.Path)).Distinct().Order(StringComparer.Ordinal)];
        return o;
    }

    /// <summary>True when the model has adapters and at least one is enabled.</summary>
    public static bool AdaptersEnabled(this ICausalLM model) => model.Targets().Any(t => t.Adapter.Enabled);

    /// <summary>Enables or disables every adapter: disabled, each layer runs exactly its base ops.</summary>
    public static void SetAdaptersEnabled(this ICausalLM model, bool enabled)
    {
        foreach (var t in model.Targets())
        {
            t.Adapter.Enabled = enabled;
        }
    }

    /// <summary>
    /// Disables every adapter until the returned scope is disposed, which restores each one's previous state: the
    /// model is then exactly its base (the DPO reference). A model without adapters gets a scope that does nothing.
    /// </summary>
    public static IDisposable DisableAdapters(this ICausalLM model)
    {
        var adapters = model.Targets().Select(t => t.Adapter).ToList();
        var before = adapters.Select(a => a.Enabled).ToList();
        foreach (var a in adapters)
        {
            a.Enabled = false;
        }

        return new RestoreScope(adapters, before);
    }

    /// <summary>Adapter parameters <see cref="Inject"/> would add with <paramref name="options"/>: r·(in + out) per
    /// selected layer (works on a model built on the meta device: nothing is allocated).</summary>
    /// <exception cref="DpoSharpException">Invalid options or a target name that matches no linear layer.</exception>
    public static long AdapterParameterCount(this ICausalLM model, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var layers = model.LinearLayers();
        return ResolveTargets(model, options).Sum(p => (long)options.R * (layers[p].InFeatures + layers[p].OutFeatures));
    }

    /// <summary>Trainable (<c>requires_grad</c>) and total parameter elements.</summary>
    public static ParameterCount CountParameters(this ICausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long trainable = 0, total = 0;
        foreach (var p in model.Module.parameters())
        {
            total += p.numel();
            if (p.requires_grad)
            {
                trainable += p.numel();
            }
        }

        return new ParameterCount(trainable, total);
    }

    /// <summary>
    /// Folds every adapter into its base weight — W + (alpha / r)·B·A, transposed for (in, out) layouts (GPT-2's
    /// Conv1D), computed in fp32 and stored in the weight's dtype — then removes the adapters and makes every
    /// parameter trainable again: a plain model that saves as a normal Hugging Face checkpoint. Returns the number
    /// of layers merged.
    /// </summary>
    public static int Merge(this ICausalLM model)
    {
        var targets = model.Targets();
        using (no_grad())
        {
            foreach (var t in targets)
            {
                using var scope = NewDisposeScope();
                var delta = t.Adapter.DeltaWeight();                         // (out, in)
                var w = t.Layer.Weight;
                var update = t.Layer.FanInFanOut ? delta.t() : delta;         // (in, out) or (out, in)
                w.add_(update.to(w.dtype));
            }
        }

        Detach(model, targets);
        return targets.Count;
    }

    /// <summary>Removes every adapter without merging it and makes every parameter trainable again (the base model).</summary>
    public static void RemoveAdapters(this ICausalLM model) => Detach(model, model.Targets());

    /// <summary>
    /// Every linear layer that can carry an adapter (<see cref="ILoraTarget"/>, except the <c>lm_head</c>), by module path.
    /// </summary>
    public static IReadOnlyDictionary<string, ILoraTarget> LinearLayers(this ICausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var d = new Dictionary<string, ILoraTarget>(StringComparer.Ordinal);
        foreach (var (name, m) in model.Module.named_modules())
        {
            if (m is ILoraTarget t && name != LmHead && !name.EndsWith("." + LmHead, StringComparison.Ordinal))
            {
                d[name] = t;
            }
        }

        return d;
    }

    /// <summary>
    /// Attaches fresh adapters at <paramref name="paths"/> (linear layers of <see cref="LinearLayers"/>), freezes
    /// the base, records <paramref name="options"/> for <see cref="Options"/>.
    /// </summary>
    internal static IReadOnlyList<LoraTarget> Attach(ICausalLM model, IReadOnlyCollection<string> paths, LoraOptions options, long seed)
    {
        var layers = model.LinearLayers();
        var wanted = paths.ToHashSet(StringComparer.Ordinal);
        bool training = model.Module.training;
        using var gen = new Generator((ulong)seed, CPU);
        foreach (var (path, layer) in layers.Where(l => wanted.Contains(l.Key)))
        {
            var w = layer.Weight;
            var dtype = w.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : w.dtype;
            var adapter = new LoraAdapter(layer.InFeatures, layer.OutFeatures, options.R, options.LoraAlpha, options.LoraDropout, w.device, dtype, gen);
            adapter.train(training);
            layer.AttachLora(adapter);
        }

        foreach (var (name, p) in model.Module.named_parameters())
        {
            p.requires_grad = LoraAdapter.IsAdapterParameter(name);
        }

        Settings.AddOrUpdate(model.Module, options.Clone());
        return model.Targets();
    }

    /// <summary>The module paths <paramref name="options"/> selects, in module order.</summary>
    internal static IReadOnlyList<string> ResolveTargets(ICausalLM model, LoraOptions options)
    {
        var layers = model.LinearLayers();
        var names = options.TargetModules.Count > 0 ? options.TargetModules : LoraOptions.DefaultTargetModules(model.Config.ModelType);
        var layerNames = layers.Keys.Select(LastSegment).Distinct().ToList();
        if (names.Count == 0)
        {
            throw new DpoSharpException($"LoRA has no default target modules for model_type '{model.Config.ModelType}': set target_modules " +
                $"(its linear layers: {string.Join(", ", layerNames)}) or {LoraOptions.AllLinear}.");
        }

        if (names.Count == 1 && names[0] == LoraOptions.AllLinear)
        {
            return [.. layers.Keys];
        }

        var selected = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            var hits = layers.Keys.Where(p => PathMatches(p, name)).ToList();
            if (hits.Count == 0)
            {
                var other = model.Module.named_modules().FirstOrDefault(m => m.name.Length > 0 && PathMatches(m.name, name));
                if (other.module is not null)
                {
                    throw new DpoSharpException($"LoRA target module '{name}' matches {other.name}, a {other.module.GetName()}, not a linear layer. " +
                        $"Linear layers of this {model.Config.ModelType} model: {string.Join(", ", layerNames)}.");
                }

                var close = NameSuggestions.Closest(name, layerNames);
                throw new DpoSharpException($"LoRA target module '{name}' matches no layer of this {model.Config.ModelType} model" +
                    (close.Count > 0 ? $" (did you mean {string.Join(" or ", close)}?)" : "") +
                    $". Its linear layers: {string.Join(", ", layerNames)}; or use {LoraOptions.AllLinear}.");
            }

            selected.UnionWith(hits);
        }

        return [.. layers.Keys.Where(selected.Contains)];
    }

    private static void Detach(ICausalLM model, IReadOnlyList<LoraTarget> targets)
    {
        foreach (var t in targets)
        {
            var adapter = t.Adapter;
            t.Layer.AttachLora(null);
            adapter.Dispose();
        }

        foreach (var p in model.Module.parameters())
        {
            p.requires_grad = true;
        }

        Settings.Remove(model.Module);
    }

    /// <summary>PEFT's match: the whole path, or a suffix after a dot.</summary>
    private static bool PathMatches(string path, string name) =>
        path == name || path.EndsWith("." + name, StringComparison.Ordinal);

    private static string LastSegment(string path) => path[(path.LastIndexOf('.') + 1)..];

    private sealed class RestoreScope(List<LoraAdapter> adapters, List<bool> before) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            for (int i = 0; i < adapters.Count; i++)
            {
                adapters[i].Enabled = before[i];
            }
        }
    }
}
