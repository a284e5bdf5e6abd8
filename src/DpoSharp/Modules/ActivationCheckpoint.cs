using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>
/// Activation checkpointing (reentrant, as <c>torch.utils.checkpoint</c> with <c>use_reentrant=True</c>): the forward
/// runs a block without recording its graph and keeps only its input; the backward recomputes the block under
/// <c>enable_grad</c> from a detached copy of that input, runs <c>torch.autograd.backward</c> on the recomputed output
/// with the incoming gradient — the block's parameters accumulate their gradients there, exactly as in a plain
/// backward — and hands the input's gradient on. The default CPU generator's state is captured before the forward and
/// restored around the recomputation, so dropout draws the same mask twice (on other devices, whose generator state
/// TorchSharp 0.107 cannot read, the device generator is re-seeded with one seed drawn per call instead).
/// </summary>
public static class ActivationCheckpoint
{
    /// <summary>
    /// Runs <paramref name="block"/>(<paramref name="input"/>, <paramref name="constants"/>) without keeping its
    /// activations when gradients are needed (grad mode on and <paramref name="input"/> or one of
    /// <paramref name="parameters"/> requires grad); otherwise simply runs it.
    /// </summary>
    /// <param name="block">The computation; must depend only on its arguments, the parameters and the RNG (it runs twice).</param>
    /// <param name="input">The differentiable input, e.g. hidden states (B, T, D).</param>
    /// <param name="constants">Tensors the block reads but does not differentiate (masks, RoPE tables; null entries
    /// allowed); they are kept alive until the backward and passed again to the recomputation.</param>
    /// <param name="parameters">The trainable tensors the block uses (gradients accumulate into them).</param>
    public static Tensor Run(Func<Tensor, IReadOnlyList<Tensor?>, Tensor> block, Tensor input, IReadOnlyList<Tensor?> constants, IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(constants);
        ArgumentNullException.ThrowIfNull(parameters);
        bool paramsNeedGrad = parameters.Any(p => p.requires_grad);
        if (!is_grad_enabled() || !(input.requires_grad || paramsNeedGrad))
        {
            return block(input, constants);
        }

        // A frozen input (e.g. embeddings of a frozen base under LoRA) would make the node non-executable and the
        // block's trainable parameters would get no gradient: a 0-element input that requires grad keeps it in the graph.
        using var anchor = input.requires_grad ? null : GradientAnchor();
        return CheckpointFunction.apply(new CheckpointCall(block, constants.Count), input, anchor, constants.ToArray());
    }

    /// <summary>
    /// Runs one decoder layer on <paramref name="h"/> (B, T, D) through <see cref="Run"/>: the context's mask and
    /// RoPE tables are the constants.
    /// </summary>
    internal static Tensor RunLayer<T>(T layer, Tensor h, AttentionContext ctx)
        where T : nn.Module, IDecoderLayer
    {
        Tensor Block(Tensor x, IReadOnlyList<Tensor?> c) => layer.Forward(x, new AttentionContext
        {
            Mask = c[0],
            IsCausal = ctx.IsCausal,
            Cos = c[1],
            Sin = c[2],
            Cache = ctx.Cache,
            SequenceGather = c[3],
            SequenceScatter = c[4],
        });

        return Run(Block, h, [ctx.Mask, ctx.Cos, ctx.Sin, ctx.SequenceGather, ctx.SequenceScatter], layer.parameters());
    }

    /// <summary>A 0-element leaf that requires grad (its gradient stays undefined).</summary>
    internal static Tensor GradientAnchor() => empty(0).requires_grad_(true);

    /// <summary>What the autograd function needs besides tensors.</summary>
    private sealed record CheckpointCall(Func<Tensor, IReadOnlyList<Tensor?>, Tensor> Block, int ConstantCount)
    {
        /// <summary>Seed of the device generator (non-CPU devices), drawn in the forward.</summary>
        public long? DeviceSeed { get; set; }
    }

    /// <summary>The custom autograd function. Arguments: <see cref="CheckpointCall"/>, input, anchor (or null), constants.</summary>
    private sealed class CheckpointFunction : autograd.SingleTensorFunction<CheckpointFunction>
    {
        private const string CallKey = "call";

        public override string Name => nameof(CheckpointFunction);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var call = (CheckpointCall)vars[0];
            var input = (Tensor)vars[1];
            var constants = ((Tensor?[])vars[3]).ToList();
            var (rngState, seed) = RngReplay.Capture(input.device);
            call.DeviceSeed = seed;
            ctx.save_data(CallKey, call);
            ctx.save_for_backward([input, rngState!, .. constants!]);
            using var scope = NewDisposeScope();
            return call.Block(input, constants).MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            DeferredDisposal.Flush();
            var call = (CheckpointCall)ctx.get_data(CallKey);
            Tensor? gradInput = null;
            using (var scope = NewDisposeScope())
            {
                var saved = ctx.get_saved_variables();
                var input = saved[0];
                var rngState = saved[1];
                var constants = saved.Skip(2).Take(call.ConstantCount).Select(t => t is null || t.IsInvalid ? null : t).ToList();
                using (RngReplay.Replay(rngState, call.DeviceSeed))
                using (enable_grad())
                {
                    var x = input.detach().requires_grad_(input.requires_grad);   // (B, T, D) leaf
                    var y = call.Block(x, constants);
                    autograd.backward([y], [gradOutput]);
                    if (input.requires_grad)
                    {
                        gradInput = x.grad?.MoveToOuterDisposeScope();
                    }
                }
            }

            // libtorch copies the returned handles after this method returns: dispose the wrappers on the next call.
            DeferredDisposal.Add(gradOutput);
            DeferredDisposal.Add(gradInput);
            return [null!, gradInput!, null!, null!];
        }
    }
}

/// <summary>
/// Replays random draws in a recomputation: on the CPU the default generator's state is captured before the first
/// computation and restored around the second (then put back where it was); on other devices, whose generator state
/// TorchSharp 0.107 cannot read, the device generators are seeded with one seed drawn per call before both.
/// </summary>
internal static class RngReplay
{
    /// <summary>Before the first computation on <paramref name="device"/>: the CPU generator state (a tensor in the
    /// current dispose scope; save it for the backward), or the seed just given to the device generators.</summary>
    public static (Tensor? CpuState, long? DeviceSeed) Capture(Device device)
    {
        if (device.type == DeviceType.CPU)
        {
            return (random.get_rng_state(), null);   // (5056) uint8
        }

        long seed = randint(0, long.MaxValue, [1], ScalarType.Int64).item<long>();
        cuda.manual_seed_all(seed);
        return (null, seed);
    }

    /// <summary>Before the recomputation: sets the captured state (or seed); disposing restores the CPU state of before.</summary>
    public static IDisposable Replay(Tensor? cpuState, long? deviceSeed)
    {
        if (cpuState is not null && !cpuState.IsInvalid)
        {
            var outer = random.get_rng_state();
            random.set_rng_state(cpuState);
            return new Restore(outer);
        }

        if (deviceSeed is long seed)
        {
            cuda.manual_seed_all(seed);
        }

        return new Restore(null);
    }

    private sealed class Restore(Tensor? outer) : IDisposable
    {
        public void Dispose()
        {
            if (outer is not null)
            {
                random.set_rng_state(outer);
                outer.Dispose();
            }
        }
    }
}

/// <summary>
/// Wrappers of tensors handed back to libtorch from a custom backward: libtorch takes its own reference once the
/// method returns, so the managed wrapper can be disposed at the next backward call (or by its dispose scope).
/// </summary>
internal static class DeferredDisposal
{
    [ThreadStatic]
    private static List<Tensor>? _pending;

    /// <summary>Queues <paramref name="t"/> (null ignored).</summary>
    public static void Add(Tensor? t)
    {
        if (t is not null)
        {
            (_pending ??= []).Add(t);
        }
    }

    /// <summary>Disposes the queued wrappers.</summary>
    public static void Flush()
    {
        if (_pending is null)
        {
            return;
        }

        foreach (var t in _pending)
        {
            t.Dispose();
        }

        _pending.Clear();
    }
}
