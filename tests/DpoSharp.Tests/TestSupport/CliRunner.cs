using DpoSharp.Cli;

namespace DpoSharp.Tests.TestSupport;

/// <summary>Runs the <c>dposharp</c> CLI in-process and captures its output.</summary>
internal static class CliRunner
{
    /// <summary>Runs <paramref name="args"/>; returns the exit code, stdout and stderr.</summary>
    public static (int Rc, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = DpoSharpCli.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }
}
