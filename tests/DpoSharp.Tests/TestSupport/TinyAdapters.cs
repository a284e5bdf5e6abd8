using System.Text.Json.Nodes;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Tests.Models.Lora;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// A tiny base checkpoint (<see cref="TinyCheckpoints.Write"/>, with its tokenizer) and a PEFT adapter for it that
/// looks trained: LoRA injected (r 4, alpha 8, every linear layer unless <c>options</c> says otherwise), B set to
/// random non-zero values, saved with <see cref="PeftAdapter.Save"/>.
/// </summary>
internal static class TinyAdapters
{
    /// <summary>Writes <c>root/base</c> and <c>root/adapter</c> (names overridable) and returns their paths.</summary>
    /// <param name="root">The parent folder.</param>
    /// <param name="type">A <see cref="TinyCheckpoints.ModelTypes"/> model type.</param>
    /// <param name="options">LoRA settings (default: r 4, alpha 8, all-linear).</param>
    /// <param name="std">Standard deviation of B (large enough to change greedy outputs of the tiny models).</param>
    /// <param name="configure">Edits the base config (e.g. another hidden size).</param>
    /// <param name="baseName">Folder name of the base under <paramref name="root"/>.</param>
    /// <param name="adapterName">Folder name of the adapter under <paramref name="root"/>.</param>
    public static (string Base, string Adapter) Write(string root, string type, LoraOptions? options = null, double std = 0.3,
        Action<JsonObject>? configure = null, string baseName = "base", string adapterName = "adapter")
    {
        var baseDir = TinyCheckpoints.Write(Path.Combine(root, baseName), type, seed: 6, configure: configure);
        using var model = ModelLoader.Load(baseDir);
        model.Inject(options ?? new LoraOptions { TargetModules = [LoraOptions.AllLinear], R = 4, LoraAlpha = 8, BaseModelNameOrPath = "tiny/" + type }, seed: 7);
        LoraModelTests.RandomizeAdapters(model, seed: 4, std);
        var adapterDir = Path.Combine(root, adapterName);
        PeftAdapter.Save(model, adapterDir);
        return (baseDir, adapterDir);
    }

    /// <summary>The base in <paramref name="baseDir"/> with the adapter in <paramref name="adapterDir"/> loaded (not merged).</summary>
    public static ICausalLM LoadWithAdapter(string baseDir, string adapterDir)
    {
        var model = ModelLoader.Load(baseDir);
        PeftAdapter.Load(model, adapterDir);
        return model;
    }
}
