using DpoSharp.Cli;

namespace DpoSharp.Tests.Cli.Commands;

public class CliInfoTests
{
    [Fact]
    public void InfoPrintsLibTorchVersionAndThreads()
    {
        var output = new StringWriter();
        var rc = DpoSharpCli.Run(["info"], output);
        Assert.Equal(0, rc);
        var text = output.ToString();
        Assert.Contains("2.10.0", text); // libtorch 2.10 from TorchSharp-cpu 0.107
        Assert.Contains(TorchSharp.torch.get_num_threads().ToString(System.Globalization.CultureInfo.InvariantCulture), text);
        Assert.Contains("CUDA available", text);
    }

    [Fact]
    public void UnknownCommandIsBadInputWithExitCode2()
    {
        var err = new StringWriter();
        var rc = DpoSharpCli.Run(["no-such-command"], new StringWriter(), err);
        Assert.Equal(2, rc);
        Assert.Contains("no-such-command", err.ToString());
    }
}
