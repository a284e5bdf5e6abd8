using DpoSharp.Cli;

namespace DpoSharp.Tests.Cli;

/// <summary>
/// The exit-code contract: 0 done; 2 bad input or environment (the message names it and the fix); 130 interrupted,
/// resumable (Cli/Commands/CliInterruptTests run it with real signals); 1 a bug, with how to report it.
/// </summary>
public class ExitCodeTests
{
    [Fact]
    public void TheCodesAreTheDocumentedOnes()
    {
        Assert.Equal(0, DpoSharpCli.SuccessExitCode);
        Assert.Equal(1, DpoSharpCli.BugExitCode);
        Assert.Equal(2, DpoSharpCli.BadInputExitCode);
        Assert.Equal(130, DpoSharpCli.InterruptedExitCode);
    }

    [Fact]
    public void ACommandThatWorksExitsWith0()
    {
        var (rc, _, err) = CliRunner.Run("info");
        Assert.Equal(0, rc);
        Assert.Empty(err);
    }

    [Fact]
    public void BadInputAndEnvironmentExitWith2NamingWhatToFix()
    {
        using var dir = TestPaths.CreateTempDir();
        var missing = Path.Combine(dir.Path, "no-such-model");
        var (rc, _, err) = CliRunner.Run("tokenize", "--model", missing, "--text", "x");
        Assert.Equal(2, rc);
        Assert.StartsWith("error: ", err);
        Assert.Contains(missing, err);

        (rc, _, err) = CliRunner.Run("train", "--no-such-flag", "1");
        Assert.Equal(2, rc);
        Assert.Contains("--no-such-flag", err);

        var e = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Fail(new IOException("No space left on device: /out/model.safetensors"), e));
        Assert.Contains("/out/model.safetensors", e.ToString());
        Assert.Contains("free disk space", e.ToString());
    }

    [Fact]
    public void ABugExitsWith1AndSaysHowToReportIt()
    {
        var e = new StringWriter();
        Assert.Equal(1, DpoSharpCli.Fail(new InvalidOperationException("boom"), e));
        var text = e.ToString();
        Assert.StartsWith("error: internal error (InvalidOperationException): boom", text);
        Assert.Contains("This is a bug in dposharp: please report it", text);
        Assert.Contains("DPOSHARP_DEBUG=1", text);
    }
}
