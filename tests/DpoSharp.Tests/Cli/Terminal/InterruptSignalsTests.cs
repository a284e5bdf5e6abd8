using System.Runtime.InteropServices;
using DpoSharp.Cli.Terminal;

namespace DpoSharp.Tests.Cli.Terminal;

/// <summary>The first signal cancels, the second exits with 130 (the real signals: Cli/Commands/CliInterruptTests).</summary>
public class InterruptSignalsTests
{
    [Fact]
    public void TheFirstSignalCancelsTheSecondExitsWith130()
    {
        var error = new StringWriter();
        int? exited = null;
        using var outer = new CancellationTokenSource();
        using var signals = new InterruptSignals(outer.Token, error, code => exited = code, register: false);
        Assert.False(signals.Token.IsCancellationRequested);

        signals.Raise(PosixSignal.SIGTERM);
        Assert.True(signals.Token.IsCancellationRequested);
        Assert.Null(exited);
        Assert.Equal("", error.ToString());

        signals.Raise(PosixSignal.SIGINT);
        Assert.Equal(130, exited);
        Assert.Contains("Ctrl-C again: stopping at once", error.ToString());
        Assert.Equal(2, signals.Count);
    }

    [Fact]
    public void TheOuterTokenCancelsToo()
    {
        using var outer = new CancellationTokenSource();
        using var signals = new InterruptSignals(outer.Token, TextWriter.Null, _ => throw new InvalidOperationException("must not exit"), register: false);
        outer.Cancel();
        Assert.True(signals.Token.IsCancellationRequested);
        Assert.Equal(0, signals.Count);
    }
}
