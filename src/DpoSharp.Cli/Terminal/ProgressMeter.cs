using System.Globalization;
using System.Text;
using Spectre.Console;

namespace DpoSharp.Cli.Terminal;

/// <summary>
/// The numbers of one progress row — a training run or a demo stage — and its layout:
/// <c>train ━━━━━━━━━━━━ step 120/400  30% elapsed 0:01:02 eta 0:02:25 51.3 pairs/s</c>. Every field carries its
/// label or unit; at 80 columns all of them fit and the bar takes what is left (it is left out below 5 columns).
/// Time counts from <see cref="ProgressMeter(string, int, string?, TimeProvider?)"/> and stops at
/// <see cref="Finish"/>. ETA and rate are measured at the steps of this session only (a resumed run does not count
/// the steps it resumed from): after the first step, over the time since the meter started; later, over the steps
/// since the first one, which leaves start-up costs out.
/// </summary>
public sealed class ProgressMeter
{
    /// <summary>The smallest bar worth drawing; below this the row goes without it.</summary>
    public const int MinBarWidth = 5;

    /// <summary>The widest bar.</summary>
    public const int MaxBarWidth = 40;

    private readonly TimeProvider _clock;
    private readonly long _started;
    private readonly object _lock = new();
    private long? _stopped;
    private int _baseDone;
    private long _baseUnits;
    private long? _firstAt;
    private long _lastAt;
    private int _firstDone;
    private long _firstUnits;
    private int _done;
    private long _units;
    private volatile string? _note;

    /// <summary>Starts the clock.</summary>
    /// <param name="name">The row's name (<c>train</c>, <c>sft</c>, a demo stage).</param>
    /// <param name="total">Steps (or units of <see cref="Done"/>) in all.</param>
    /// <param name="rateUnit">What the rate counts per second (<c>pairs/s</c>); null: no rate column.</param>
    /// <param name="clock">Time source (tests). Default: the system clock.</param>
    public ProgressMeter(string name, int total, string? rateUnit, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        Total = Math.Max(1, total);
        RateUnit = rateUnit;
        _clock = clock ?? TimeProvider.System;
        _started = _clock.GetTimestamp();
    }

    /// <summary>The row's name.</summary>
    public string Name { get; }

    /// <summary>The width the name is padded to (to align several rows; see <see cref="Align"/>).</summary>
    /// <value>Default 0: the name's own width.</value>
    public int NameWidth { get; set; }

    /// <summary>The digits step numbers are padded to (to align several rows).</summary>
    /// <value>Default 0: the digits of <see cref="Total"/>.</value>
    public int StepDigits { get; set; }

    /// <summary>The width the rate unit is padded to (to align several rows; a row without a rate then shows
    /// blanks there).</summary>
    /// <value>Default 0: the unit's own width.</value>
    public int RateUnitWidth { get; set; }

    /// <summary>Steps in all.</summary>
    public int Total { get; set; }

    /// <summary>Steps done.</summary>
    public int Done
    {
        get
        {
            lock (_lock)
            {
                return _done;
            }
        }
    }

    /// <summary>What the rate counts, e.g. <c>pairs/s</c>; null: no rate.</summary>
    public string? RateUnit { get; }

    /// <summary>A line shown under the row (e.g. "stopping after this step"), or null.</summary>
    public string? Note { get => _note; set => _note = value; }

    /// <summary>True once <see cref="Finish"/> froze the time.</summary>
    public bool IsFinished
    {
        get
        {
            lock (_lock)
            {
                return _stopped is not null;
            }
        }
    }

    /// <summary>Time since the meter started, frozen by <see cref="Finish"/>.</summary>
    public TimeSpan Elapsed
    {
        get
        {
            lock (_lock)
            {
                return _clock.GetElapsedTime(_started, _stopped ?? _clock.GetTimestamp());
            }
        }
    }

    /// <summary>Estimated time to <see cref="Total"/>: zero once done; null before the first step and once stopped
    /// short of the end.</summary>
    public TimeSpan? Remaining
    {
        get
        {
            lock (_lock)
            {
                if (_done >= Total)
                {
                    return TimeSpan.Zero;
                }

                if (_stopped is not null)
                {
                    return null;
                }

                // Rounded up: "0:00:00" only when done.
                var (steps, seconds, _) = Window();
                return steps <= 0 || seconds <= 0 ? null : TimeSpan.FromSeconds(Math.Ceiling(Math.Min(seconds / steps * (Total - _done), 1e10)));
            }
        }
    }

    /// <summary>Units per second over this session (see the class summary); null before the first step.</summary>
    public double? Rate
    {
        get
        {
            lock (_lock)
            {
                var (steps, seconds, units) = Window();
                return steps <= 0 || seconds <= 0 ? null : units / seconds;
            }
        }
    }

    /// <summary>Fraction done, in percent (whole: 100 only at the end).</summary>
    public int Percent
    {
        get
        {
            lock (_lock)
            {
                return (int)Math.Clamp(Math.Floor(100.0 * _done / Total), 0, 100);
            }
        }
    }

    /// <summary>Where this session starts (a resumed run's step and units): steps before it do not count towards
    /// the rate or ETA.</summary>
    /// <param name="done">Steps done before this session.</param>
    /// <param name="units">Units done before this session.</param>
    public void Rebase(int done, long units)
    {
        lock (_lock)
        {
            _baseDone = _done = done;
            _baseUnits = _units = units;
            _firstAt = null;
        }
    }

    /// <summary>Records progress: <paramref name="done"/> steps, <paramref name="units"/> units (pairs, samples; or
    /// the steps again) since the start of the run.</summary>
    /// <param name="done">Steps done.</param>
    /// <param name="units">Units done.</param>
    public void Report(int done, long units)
    {
        lock (_lock)
        {
            if (_stopped is not null)
            {
                return;
            }

            var now = _clock.GetTimestamp();
            if (_firstAt is null && done > _baseDone)
            {
                _firstAt = now;
                _firstDone = done;
                _firstUnits = units;
            }

            if (done != _done)
            {
                _lastAt = now;
            }

            _done = done;
            _units = units;
        }
    }

    /// <summary>Freezes the time (a finished or stopped stage).</summary>
    public void Finish()
    {
        lock (_lock)
        {
            _stopped ??= _clock.GetTimestamp();
        }
    }

    /// <summary>Pads the rows' names, step numbers and rate units to the same widths, so that their fields and bars
    /// line up.</summary>
    /// <param name="meters">The rows shown together.</param>
    public static void Align(IReadOnlyCollection<ProgressMeter> meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        if (meters.Count == 0)
        {
            return;
        }

        int name = meters.Max(m => m.Name.Length);
        int digits = meters.Max(m => Digits(m.Total));
        int unit = meters.Max(m => m.RateUnit?.Length ?? 0);
        foreach (var m in meters)
        {
            m.NameWidth = name;
            m.StepDigits = digits;
            m.RateUnitWidth = unit;
        }
    }

    /// <summary>The row as Spectre markup, fitted to <paramref name="width"/> columns (plus the note's line).</summary>
    /// <param name="width">Console columns.</param>
    /// <param name="unicode">Draw the bar with <c>━</c> (else <c>-</c>).</param>
    public string ToMarkup(int width, bool unicode = true)
    {
        var fields = Fields();
        int text = fields.Sum(f => f.Text.Length) + fields.Count - 1;
        int bar = Math.Min(MaxBarWidth, width - text - 1);
        var sb = new StringBuilder();
        for (int i = 0; i < fields.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(' ');
            }

            var (t, style) = fields[i];
            sb.Append(style is null ? Markup.Escape(t) : $"[{style}]{Markup.Escape(t)}[/]");
            if (i == 0 && bar >= MinBarWidth)
            {
                sb.Append(' ').Append(Bar(bar, unicode));
            }
        }

        if (Note is { } note)
        {
            sb.Append('\n').Append("[yellow]").Append(Markup.Escape(note)).Append("[/]");
        }

        return sb.ToString();
    }

    /// <summary>The row as plain text (no bar): the log-line form.</summary>
    public string ToText() => string.Join(" ", Fields().Select(f => f.Text));

    /// <summary><c>h:mm:ss</c>.</summary>
    /// <param name="t">A duration.</param>
    public static string FormatTime(TimeSpan t) =>
        string.Create(CultureInfo.InvariantCulture, $"{(long)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}");

    /// <summary>A rate with 3 significant digits or more: 0.123, 1.23, 12.3, 1234.</summary>
    /// <param name="perSecond">Units per second.</param>
    public static string FormatRate(double perSecond) => perSecond switch
    {
        < 1 => perSecond.ToString("F3", CultureInfo.InvariantCulture),
        < 10 => perSecond.ToString("F2", CultureInfo.InvariantCulture),
        < 1000 => perSecond.ToString("F1", CultureInfo.InvariantCulture),
        _ => perSecond.ToString("F0", CultureInfo.InvariantCulture),
    };

    private (int Steps, double Seconds, double Units) Window()
    {
        // Measured at the steps (stable between them). After one step: from the start; later: from the first step,
        // which leaves out start-up costs.
        if (_firstAt is not { } first)
        {
            return (0, 0, 0);
        }

        return _done > _firstDone
            ? (_done - _firstDone, _clock.GetElapsedTime(first, _lastAt).TotalSeconds, _units - _firstUnits)
            : (_done - _baseDone, _clock.GetElapsedTime(_started, first).TotalSeconds, _units - _baseUnits);
    }

    private List<(string Text, string? Style)> Fields()
    {
        int done, total;
        lock (_lock)
        {
            done = _done;
            total = Total;
        }

        int digits = Math.Max(StepDigits, Digits(total));
        var remaining = Remaining;
        var rate = Rate;
        var fields = new List<(string, string?)>
        {
            (Name.PadRight(NameWidth), "bold"),
            ($"step {Number(done).PadLeft(digits)}/{Number(total).PadRight(digits)}", null),
            ($"{Percent,3}%", null),
            ($"elapsed {FormatTime(Elapsed)}", "blue"),
            ($"eta {(remaining is { } r ? FormatTime(r) : "-:--:--")}", "blue"),
        };
        int unitWidth = Math.Max(RateUnitWidth, RateUnit?.Length ?? 0);
        if (RateUnit is not null)
        {
            // Rates print in at most 5 characters (FormatRate): padded, the field keeps its width as the rate changes.
            fields.Add(($"{(rate is { } v ? FormatRate(v) : "-"),5} {RateUnit.PadRight(unitWidth)}", null));
        }
        else if (unitWidth > 0)
        {
            fields.Add((new string(' ', 6 + unitWidth), null));
        }

        return fields;
    }

    private static int Digits(int n) => n.ToString(CultureInfo.InvariantCulture).Length;

    private static string Number(int n) => n.ToString(CultureInfo.InvariantCulture);

    private string Bar(int width, bool unicode)
    {
        char c = unicode ? '━' : '-';
        int filled = (int)Math.Round(width * Math.Clamp((double)Done / Total, 0, 1));
        string color = Done >= Total ? "green" : "yellow";
        var sb = new StringBuilder();
        if (filled > 0)
        {
            sb.Append($"[{color}]").Append(c, filled).Append("[/]");
        }

        if (width - filled > 0)
        {
            sb.Append("[grey]").Append(c, width - filled).Append("[/]");
        }

        return sb.ToString();
    }
}
