using System.CommandLine;
using DpoSharp.Diagnostics;
using Spectre.Console;

namespace DpoSharp.Cli.Commands;

/// <summary><c>dposharp info</c>: TorchSharp / libtorch versions, threads, device, CUDA, CPU extensions.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Show TorchSharp and libtorch versions, threads, device, CUDA availability and CPU vector extensions.");
        cmd.SetAction(parse =>
        {
            var info = RuntimeInfo.Read();
            var console = DpoSharpCli.CreateConsole(parse.InvocationConfiguration.Output);
            var table = new Table().AddColumn("what").AddColumn("value");
            table.AddRow("DpoSharp", info.DpoSharpVersion);
            table.AddRow("TorchSharp", info.TorchSharpVersion);
            table.AddRow("libtorch", Markup.Escape(info.LibTorchVersion));
            table.AddRow("threads (intra-op)", info.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture));
            table.AddRow("threads (inter-op)", info.InteropThreads.ToString(System.Globalization.CultureInfo.InvariantCulture));
            table.AddRow("default device", info.DefaultDevice);
            table.AddRow("CUDA available", info.CudaAvailable ? $"yes ({info.CudaDevices} device(s))" : "no");
            table.AddRow("CPU vector extensions", info.CpuExtensions.Count == 0 ? "none" : string.Join(" ", info.CpuExtensions));
            table.AddRow("libstdc++ patch", Markup.Escape(info.LibStdCxxPatch));
            console.Write(table);
            return 0;
        });
        return cmd;
    }
}
