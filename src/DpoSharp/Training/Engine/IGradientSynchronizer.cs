using TorchSharp.Modules;

namespace DpoSharp.Training.Engine;

/// <summary>
/// Runs between backward and the optimizer step on every rank: data-parallel training all-reduces (averages)
/// the gradients here. The default does nothing (one process).
/// </summary>
public interface IGradientSynchronizer
{
    /// <summary>Synchronises the gradients of <paramref name="parameters"/> (same order on every rank).</summary>
    void Synchronize(IReadOnlyList<Parameter> parameters);
}

/// <summary>Single-process training: gradients stay as they are.</summary>
public sealed class NoGradientSynchronizer : IGradientSynchronizer
{
    /// <summary>The shared instance.</summary>
    public static NoGradientSynchronizer Instance { get; } = new();

    /// <inheritdoc/>
    public void Synchronize(IReadOnlyList<Parameter> parameters)
    {
    }
}
