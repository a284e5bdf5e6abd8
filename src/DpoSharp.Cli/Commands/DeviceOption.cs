using System.CommandLine;
using TorchSharp;

namespace DpoSharp.Cli.Commands;

/// <summary>The shared <c>--device cpu|cuda|cuda:N</c> option.</summary>
public static class DeviceOption
{
    /// <summary>Creates the option (default cpu).</summary>
    public static Option<string> Create() => new("--device")
    {
        Description = "Device: cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>Parses the value; CUDA without a CUDA build/device is a DpoSharpException.</summary>
    public static torch.Device Resolve(string? value)
    {
        var v = (value ?? "cpu").Trim().ToLowerInvariant();
        if (v == "cpu")
        {
            return torch.CPU;
        }

        if (v == "cuda" || v.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
            {
                throw new DpoSharpException($"--device {value}: CUDA is not available (this build uses TorchSharp-cpu, or no GPU was found). Use --device cpu.");
            }

            return new torch.Device(v);
        }

        throw new DpoSharpException($"--device '{value}' is not valid: use cpu, cuda or cuda:N.");
    }
}
