using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>
/// The processes of a data-parallel run as the training loop sees them: this process's rank, how many there are,
/// and the three collectives the loop needs (sums of host numbers, sums of tensors, a broadcast from rank 0). Every
/// rank must make the same calls in the same order with the same shapes; the implementation over MPI is
/// <c>DpoSharp.Distributed.MpiWorld</c>. One process: <see cref="SingleProcessGroup"/>.
/// </summary>
public interface IProcessGroup
{
    /// <summary>This process's rank, 0 to <see cref="WorldSize"/> − 1; rank 0 writes every file.</summary>
    int Rank { get; }

    /// <summary>Number of processes.</summary>
    int WorldSize { get; }

    /// <summary>Replaces every value with its sum over all ranks (in double precision).</summary>
    void SumInPlace(Span<double> values);

    /// <summary>Replaces every element of the floating-point <paramref name="tensors"/> with its sum over all ranks
    /// (reduced in float32; the tensors keep their dtype and device). Call under <c>no_grad</c>.</summary>
    void SumInPlace(IReadOnlyList<Tensor> tensors);

    /// <summary>Replaces the values of <paramref name="tensors"/> with rank 0's, bit for bit. Call under <c>no_grad</c>.</summary>
    void Broadcast(IReadOnlyList<Tensor> tensors);
}

/// <summary>One process: every collective leaves the values as they are.</summary>
public sealed class SingleProcessGroup : IProcessGroup
{
    /// <summary>The shared instance.</summary>
    public static SingleProcessGroup Instance { get; } = new();

    /// <inheritdoc/>
    public int Rank => 0;

    /// <inheritdoc/>
    public int WorldSize => 1;

    /// <inheritdoc/>
    public void SumInPlace(Span<double> values)
    {
    }

    /// <inheritdoc/>
    public void SumInPlace(IReadOnlyList<Tensor> tensors)
    {
    }

    /// <inheritdoc/>
    public void Broadcast(IReadOnlyList<Tensor> tensors)
    {
    }
}
