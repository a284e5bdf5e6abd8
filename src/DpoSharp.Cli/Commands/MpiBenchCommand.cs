using System.Globalization;
using System.Text.Json.Nodes;
using DpoSharp.Diagnostics;
using DpoSharp.Training.Engine;
using Spectre.Console;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>dposharp bench --mpi</c> (alone, or under <c>mpirun -np N</c>): the benchmark step as one rank of a
/// data-parallel world, the gradient all-reduce bandwidth and the projection to N machines
/// (<see cref="MpiBenchmark"/>); rank 0 prints a table or, with <c>--json</c>, one JSON object.
/// </summary>
internal static class MpiBenchCommand
{
    /// <summary>Machine counts of the projection.</summary>
    private static readonly int[] ProjectedMachines = [1, 2, 4, 8, 16];

    public static int Run(BenchmarkOptions options, double networkGbps, bool asJson, TextWriter output)
    {
        using var launch = DataParallelLaunch.Start(options.Threads > 0 ? options.Threads : null);
        return launch.Run(
            () =>
            {
                var console = launch.Console(DpoSharpCli.CreateConsole(output));
                IProcessGroup group = launch.World is { } w ? w : SingleProcessGroup.Instance;
                var result = MpiBenchmark.Run(options with { Threads = 0 }, group, networkGbps * 1.25e8, progress: (step, total) =>
                {
                    if (!asJson)
                    {
                        console.MarkupLine(step == 1 ? $"warm-up step done ({total - 1} timed steps follow)" : $"step {step - 1}/{total - 1}");
                    }
                });
                if (!launch.IsRank0)
                {
                    return 0;
                }

                if (asJson)
                {
                    output.WriteLine(ToJson(result, networkGbps).ToJsonString());
                }
                else
                {
                    console.Write(ToTable(result, networkGbps));
                }

                return 0;
            },
            DpoSharpCli.Invocation?.Error ?? Console.Error);
    }

    private static double Compute(MpiBenchmarkResult r) => r.Step.SecondsPerStep - (r.AllReduceSeconds ?? 0);

    /// <summary>The result as one JSON object: the step benchmark's fields plus the data-parallel ones.</summary>
    public static JsonObject ToJson(MpiBenchmarkResult r, double networkGbps)
    {
        var o = BenchCommand.ToJson(r.Step);
        o["world_size"] = r.WorldSize;
        o["global_pairs_per_second"] = r.GlobalPairsPerSecond;
        o["gradient_bytes"] = r.GradientBytes;
        o["allreduce_seconds"] = r.AllReduceSeconds;
        o["allreduce_bytes_per_second"] = r.AllReduceBytesPerSecond;
        o["allreduce_bus_bytes_per_second"] = r.BusBytesPerSecond;
        o["network_gbps"] = networkGbps;
        var projection = new JsonObject();
        foreach (var n in ProjectedMachines)
        {
            double s = r.ProjectedSecondsPerStep(n, Compute(r));
            projection[n.ToString(CultureInfo.InvariantCulture)] = new JsonObject { ["seconds_per_step"] = s, ["global_pairs_per_second"] = n * r.Step.Options.Pairs / s };
        }

        o["projection"] = projection;
        return o;
    }

    private static Table ToTable(MpiBenchmarkResult r, double networkGbps)
    {
        static string F(double x, string format) => x.ToString(format, CultureInfo.InvariantCulture);
        var table = new Table().AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("model", $"{r.Step.Options.Preset} ({F(r.Step.Parameters / 1e6, "F1")} M parameters, {F(r.Step.TrainableParameters / 1e6, "F1")} M trainable)");
        table.AddRow("processes", $"{r.WorldSize} × {r.Step.Options.Pairs} pairs × ({r.Step.Options.PromptLength} + {r.Step.Options.CompletionLength}) tokens, {r.Step.Threads} thread(s) each");
        table.AddRow("seconds per step", F(r.Step.SecondsPerStep, "F3"));
        table.AddRow("global pairs per second", F(r.GlobalPairsPerSecond, "F3"));
        table.AddRow("gradient all-reduced per step", MemoryEstimate.Gb(r.GradientBytes));
        table.AddRow("all-reduce time", r.AllReduceSeconds is double s ? $"{F(s * 1000, "F1")} ms" : "- (one process)");
        table.AddRow("all-reduce bandwidth", r.AllReduceBytesPerSecond is double b ? $"{F(b / 1e9, "F2")} GB/s (bus {F(r.BusBytesPerSecond!.Value / 1e9, "F2")} GB/s)" : "-");
        foreach (var n in ProjectedMachines)
        {
            double t = r.ProjectedSecondsPerStep(n, Compute(r));
            table.AddRow($"projection: {n} machine(s), {F(networkGbps, "G")} Gbit/s", $"{F(t, "F3")} s/step, {F(n * r.Step.Options.Pairs / t, "F2")} pairs/s");
        }

        return table;
    }
}
