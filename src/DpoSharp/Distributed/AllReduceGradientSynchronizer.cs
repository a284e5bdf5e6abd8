using DpoSharp.Training.Engine;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Distributed;

/// <summary>
/// Data-parallel gradients: sums every trainable parameter's gradient over the ranks of <see cref="Group"/> (in
/// float32 buckets, <see cref="IProcessGroup.SumInPlace(IReadOnlyList{Tensor})"/>). The training loop has already
/// divided each rank's loss by the loss units (pairs, completion tokens) of the whole step across all ranks, so the
/// sum is the gradient of the global mean loss — the same gradient one process computes on the global batch. With
/// LoRA only the adapters are trainable, so only their gradients travel.
/// </summary>
/// <param name="group">The processes to sum over.</param>
public sealed class AllReduceGradientSynchronizer(IProcessGroup group) : IGradientSynchronizer
{
    /// <summary>The processes summed over.</summary>
    public IProcessGroup Group { get; } = group ?? throw new ArgumentNullException(nameof(group));

    /// <inheritdoc/>
    public void Synchronize(IReadOnlyList<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (Group.WorldSize == 1)
        {
            return;
        }

        // Every rank runs the same model and code, so a parameter has a gradient on every rank or on none.
        using var noGrad = no_grad();
        Group.SumInPlace([.. parameters.Select(p => p.grad).OfType<Tensor>()]);
    }
}
