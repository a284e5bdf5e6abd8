using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Models;

/// <summary>
/// A causal language model loaded from (or savable to) a Hugging Face checkpoint directory. The model returns
/// logits only; log-probs and losses live in <c>DpoSharp.Losses</c>.
/// </summary>
public interface ICausalLM : IDisposable
{
    /// <summary>The parsed <c>config.json</c> (architecture, sizes, special token ids).</summary>
    ModelConfig Config { get; }

    /// <summary>The TorchSharp module: parameters, <c>state_dict()</c> with Hugging Face key names, train/eval, device moves.</summary>
    nn.Module Module { get; }

    /// <summary>The device the parameters live on.</summary>
    Device Device { get; }

    /// <summary>
    /// The folder the model was loaded from (<see cref="ModelLoader.Load"/>), whose tokenizer files the trainers copy
    /// next to every saved model unless told otherwise; null for a model built in memory.
    /// </summary>
    /// <value>Default null.</value>
    string? SourceDirectory => null;

    /// <summary>
    /// Runs the model. <paramref name="inputIds"/> is (B, T) int64. <paramref name="attentionMask"/> (B, T) is 1 for real
    /// tokens and 0 for padding (null: all real); the model adds the causal mask itself. Models built by
    /// <see cref="ModelLoader"/> also take a full boolean mask (B, 1, T, T), true = attend (rows holding several
    /// sequences: <c>AttentionContext.SegmentMask</c>), used as given (no cache). <paramref name="positionIds"/>
    /// (B, T) defaults to 0..T-1 per row (shifted by the cache length when <paramref name="cache"/> holds tokens).
    /// With a <paramref name="cache"/> the keys/values of this call are appended to it (generation).
    /// Returns fp32 logits (B, T, V).
    /// </summary>
    Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null);
}
