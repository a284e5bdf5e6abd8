using System.Diagnostics;
using Xunit.Abstractions;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// <c>mpirun -np N dotnet DpoSharp.Cli.dll …</c> on this machine (loopback), with the flags a container needs: root
/// allowed (<c>OMPI_ALLOW_RUN_AS_ROOT</c>), more ranks than cores (<c>--oversubscribe</c>), no cross-memory-attach
/// single copy (often not permitted in containers), PMIx's hash store. One intra-op thread per rank.
/// </summary>
internal static class MpiLauncher
{
    /// <summary>The flags of every launch (README "Multiple machines" shows the same).</summary>
    public static readonly string[] Flags = ["--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none"];

    /// <summary>The mpirun on PATH, or null.</summary>
    public static string? Mpirun => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
        .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    /// <summary>The mpirun path; without one the test is skipped with the reason, except under CI=true (where
    /// <c>.ci/run</c> installs Open MPI), where it fails.</summary>
    public static string RequireOrSkip(ITestOutputHelper output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (Mpirun is { } path)
        {
            return path;
        }

        const string reason = "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev; .ci/run installs it)";
        Assert.False(Environment.GetEnvironmentVariable("CI") == "true", reason + " but CI=true: the MPI tests must run in CI");
        output.WriteLine("SKIPPED: " + reason);
        throw new SkipException(reason);
    }

    /// <summary>Runs <c>dposharp <paramref name="args"/></c> as <paramref name="processes"/> MPI ranks; returns the
    /// exit code of mpirun, stdout and stderr.</summary>
    public static (int Rc, string Out, string Err) Run(string mpirun, int processes, params string[] args)
    {
        var psi = CliProcess.StartInfo(args);
        var dotnet = psi.FileName;
        var cliArgs = psi.ArgumentList.ToList();
        psi.FileName = mpirun;
        psi.ArgumentList.Clear();
        foreach (var a in (string[])["-np", processes.ToString(System.Globalization.CultureInfo.InvariantCulture), .. Flags, dotnet, .. cliArgs])
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        psi.Environment["PMIX_MCA_gds"] = "hash";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("mpirun did not finish within 3 minutes: " + stderr.Result);
        }

        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
