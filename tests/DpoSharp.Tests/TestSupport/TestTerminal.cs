using System.Text.RegularExpressions;
using Spectre.Console;

namespace DpoSharp.Tests.TestSupport;

/// <summary>An interactive ANSI console of a fixed width writing into a string (what a terminal would show), and a
/// clock that moves only when told.</summary>
internal static partial class TestTerminal
{
    /// <summary>An interactive console <paramref name="width"/> columns wide; its output goes to the writer.</summary>
    public static (IAnsiConsole Console, StringWriter Output) Create(int width)
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.TrueColor,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = width;
        return (console, output);
    }

    /// <summary>The output's lines without escape sequences (cursor moves, colours) and surrounding blanks (the
    /// live display blanks a line before it writes one above itself).</summary>
    public static List<string> Lines(string output) =>
        [.. AnsiEscape().Replace(output, "").Split('\n').Select(l => l.Trim('\r', ' ')).Where(l => l.Length > 0)];

    [GeneratedRegex(@"\x1B\[[0-9;?]*[ -/]*[@-~]")]
    private static partial Regex AnsiEscape();
}

/// <summary>A <see cref="TimeProvider"/> that moves only when <see cref="Advance"/> is called.</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks;

    /// <inheritdoc/>
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc/>
    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    /// <summary>Moves the clock on by <paramref name="seconds"/>.</summary>
    public void Advance(double seconds) => Interlocked.Add(ref _ticks, (long)(seconds * TimeSpan.TicksPerSecond));
}
