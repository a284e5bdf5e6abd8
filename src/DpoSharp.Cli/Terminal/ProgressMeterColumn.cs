using Spectre.Console;
using Spectre.Console.Rendering;

namespace DpoSharp.Cli.Terminal;

/// <summary>
/// The one column of DpoSharp's progress display: each task's <see cref="ProgressTask.Tag"/> is a
/// <see cref="ProgressMeter"/>, drawn as a whole labelled row fitted to the console width (Spectre's separate
/// description/bar/time columns squeeze the bar to <c>…</c> at 80 columns and carry no labels).
/// </summary>
public sealed class ProgressMeterColumn : ProgressColumn
{
    /// <inheritdoc/>
    protected override bool NoWrap => true;

    /// <inheritdoc/>
    public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(task);
        return task.Tag is ProgressMeter meter
            ? new Markup(meter.ToMarkup(options.ConsoleSize.Width, options.Unicode))
            : new Markup(Markup.Escape(task.Description));
    }
}
