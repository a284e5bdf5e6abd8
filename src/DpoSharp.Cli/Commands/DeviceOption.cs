using System.CommandLine;
using TorchSharp;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// The device rule of every command that runs a model (<c>train</c>, <c>sft</c>, <c>generate</c>, <c>score</c>):
/// <c>auto</c> (the default) is CUDA when this build and machine have it, else the CPU; or <c>cpu</c>, <c>cuda</c>,
/// <c>cuda:N</c>. The one place that rule lives.
/// </summary>
public static class DeviceOption
{
    /// <summary>The default: CUDA when available, else the CPU.</summary>
    public const string Auto = "auto";

    /// <summary>The CPU.</summary>
    public const string Cpu = "cpu";

    /// <summary>Creates the shared <c>--device</c> option (default <paramref name="defaultDevice"/>).</summary>
    public static Option<string> Create(string defaultDevice = Auto) => new("--device")
    {
        Description = "Device: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => defaultDevice,
    };

    /// <summary>The device <paramref name="value"/> names (null: <c>auto</c>); CUDA without a CUDA build or device, and
    /// unknown names, are a <see cref="DpoSharpException"/>.</summary>
    public static torch.Device Resolve(string? value)
    {
        var name = ResolveName(value);
        return name == Cpu ? torch.CPU : new torch.Device(name);
    }

    /// <summary>The name of the device <paramref name="value"/> names, with <c>auto</c> resolved (<c>cpu</c>,
    /// <c>cuda</c>, <c>cuda:N</c>); errors as <see cref="Resolve"/>.</summary>
    public static string ResolveName(string? value)
    {
        var v = (value ?? Auto).Trim().ToLowerInvariant();
        if (v == Auto)
        {
            return torch.cuda.is_available() ? "cuda" : Cpu;
        }

        if (v == Cpu)
        {
            return Cpu;
        }

        if (v == "cuda" || (v.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(v[5..], out var n) && n >= 0))
        {
            if (!torch.cuda.is_available())
            {
                throw new DpoSharpException($"--device {value}: CUDA is not available (this build uses TorchSharp-cpu, or no GPU was found). Use --device cpu or auto.");
            }

            return v;
        }

        throw new DpoSharpException($"--device '{value}' is not valid: use auto, cpu, cuda or cuda:N.");
    }
}
