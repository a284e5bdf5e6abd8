using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>One transformer block: hidden states (B, T, D) in, (B, T, D) out, with the shared attention context.</summary>
internal interface IDecoderLayer
{
    /// <summary>Runs the block on <paramref name="x"/> (B, T, D).</summary>
    Tensor Forward(Tensor x, AttentionContext ctx);
}
