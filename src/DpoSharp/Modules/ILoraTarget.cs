using TorchSharp.Modules;

namespace DpoSharp.Modules;

/// <summary>
/// A linear layer that can carry a <see cref="LoraAdapter"/> (<see cref="Linear"/>, GPT-2's <see cref="Conv1D"/>).
/// The adapter is an optional child registered as <c>lora</c>: the layer's own parameters keep their names, so the
/// base state-dict keys (and checkpoints) are unchanged.
/// </summary>
public interface ILoraTarget
{
    /// <summary>Input features.</summary>
    long InFeatures { get; }

    /// <summary>Output features.</summary>
    long OutFeatures { get; }

    /// <summary>True when <see cref="Weight"/> is stored (in, out) (GPT-2's Conv1D, PEFT's <c>fan_in_fan_out</c>);
    /// false for (out, in).</summary>
    bool FanInFanOut { get; }

    /// <summary>The base weight: (out, in), or (in, out) when <see cref="FanInFanOut"/>.</summary>
    Parameter Weight { get; }

    /// <summary>The base bias (out), or null.</summary>
    Parameter? Bias { get; }

    /// <summary>The attached adapter, or null.</summary>
    LoraAdapter? Lora { get; }

    /// <summary>
    /// Attaches <paramref name="adapter"/> (its shapes must fit this layer), replacing any current one, or detaches the
    /// current one with null. A detached adapter is not disposed.
    /// </summary>
    void AttachLora(LoraAdapter? adapter);
}
