using DpoSharp.Diagnostics;
using DpoSharp.Models;
using DpoSharp.Training;
using Spectre.Console;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// The pre-flight memory check of <c>train</c> and <c>sft</c>: before any weight is loaded, estimates the run's peak
/// from the model's config.json, the options and the longest tokenized row, prints it, and stops the run (exit 2)
/// when it exceeds the memory available (MemAvailable), naming the parts and the flags that would make it fit.
/// </summary>
internal static class MemoryPreflight
{
    /// <summary>Checks a run of the model in <paramref name="modelDir"/>; see the class summary.</summary>
    /// <param name="console">Where the estimate is printed.</param>
    /// <param name="modelDir">The model directory (its config.json is read).</param>
    /// <param name="options">The run's options.</param>
    /// <param name="rows">Rows of the largest forward.</param>
    /// <param name="sequenceLength">Tokens of the longest row.</param>
    /// <param name="reference">The run keeps a reference model in memory.</param>
    /// <param name="device">The run's device: the estimate is checked against host memory on the CPU only (a GPU's
    /// memory is not visible to TorchSharp 0.107 before allocating; the estimate is still printed).</param>
    /// <exception cref="DpoSharpException">The run would not fit.</exception>
    public static void Check(IAnsiConsole console, string modelDir, TrainingOptions options, int rows, int sequenceLength, bool reference, TorchSharp.torch.Device device)
    {
        var plan = MemoryPlan.ForRun(ModelConfig.Load(modelDir), options, rows, sequenceLength, reference);
        var estimate = MemoryEstimator.Estimate(plan);
        var available = device.type == TorchSharp.DeviceType.CPU ? ProcMemory.AvailableBytes() : null;
        console.MarkupLine(Markup.Escape($"memory estimate: {estimate}{(available is long a ? $"; available {MemoryEstimate.Gb(a)}" : "")}"));
        MemoryEstimator.ThrowIfTooLarge(estimate, available, MemoryEstimator.Fixes(plan, "--per-device-train-batch-size", "--max-length"));
    }
}
