using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>Builds and runs the block list every architecture holds (<c>layers.N</c>, gpt2's <c>h.N</c>).</summary>
internal static class DecoderStack
{
    /// <summary><paramref name="numLayers"/> blocks; <paramref name="layer"/> gets the block index (the KV-cache slot).</summary>
    public static ModuleList<T> Create<T>(int numLayers, Func<int, T> layer)
        where T : nn.Module => new(Enumerable.Range(0, numLayers).Select(layer).ToArray());

    /// <summary>
    /// Runs <paramref name="h"/> (B, T, D) through every block in order, each in its own dispose scope (a block's
    /// temporaries are released when it ends; the autograd graph keeps what the backward needs). With
    /// <see cref="AttentionContext.CheckpointLayers"/>, no KV cache and gradients on, each block goes through
    /// <see cref="ActivationCheckpoint"/>: only its input is kept, the backward recomputes it.
    /// </summary>
    public static Tensor Run<T>(Tensor h, ModuleList<T> layers, AttentionContext ctx)
        where T : nn.Module, IDecoderLayer
    {
        bool checkpoint = ctx.CheckpointLayers && ctx.Cache is null && is_grad_enabled();
        foreach (var layer in layers)
        {
            using var scope = NewDisposeScope();
            h = checkpoint ? ActivationCheckpoint.RunLayer(layer, h, ctx) : layer.Forward(h, ctx);  // (B, T, D)
            h = h.MoveToOuterDisposeScope();
        }

        return h;
    }
}
