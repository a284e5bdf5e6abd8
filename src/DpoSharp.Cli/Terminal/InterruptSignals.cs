using System.Runtime.InteropServices;

namespace DpoSharp.Cli.Terminal;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM for the commands that stop cleanly (<c>train</c>, <c>sft</c>, <c>demo</c>: the ones
/// whose action takes a cancellation token). The first signal keeps the process alive and cancels
/// <see cref="Token"/>: the run finishes its current optimizer step, checkpoints it and exits with
/// <see cref="ExitCode"/>. A second signal exits at once, also with <see cref="ExitCode"/>.
/// </summary>
public sealed class InterruptSignals : IDisposable
{
    /// <summary>The exit code of an interrupted command (128 + SIGINT, what shells report for Ctrl-C).</summary>
    public const int ExitCode = 130;

    private readonly CancellationTokenSource _cts;
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly TextWriter _error;
    private readonly Action<int> _exit;
    private int _count;

    /// <summary>Listens for SIGINT and SIGTERM until disposed.</summary>
    /// <param name="outer">A token that also cancels <see cref="Token"/>.</param>
    /// <param name="error">Where the second signal's notice goes.</param>
    /// <param name="exit">Ends the process on the second signal. Default: <c>_exit</c> (POSIX: no atexit handlers or
    /// static destructors run — libtorch's would crash under a step still running on the main thread), else
    /// <see cref="Environment.Exit"/>.</param>
    /// <param name="register">Register the real signal handlers. False: only <see cref="Raise"/> triggers them.</param>
    public InterruptSignals(CancellationToken outer, TextWriter error, Action<int>? exit = null, bool register = true)
    {
        ArgumentNullException.ThrowIfNull(error);
        _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _error = error;
        _exit = exit ?? ExitNow;
        if (!register)
        {
            return;
        }

        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            try
            {
                _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
            }
            catch (PlatformNotSupportedException)
            {
                // No such signal here (e.g. SIGTERM on some platforms): the default behaviour stays.
            }
        }
    }

    /// <summary>Cancelled by the first signal (or the outer token).</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>Signals received so far.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Acts as if <paramref name="signal"/> arrived: the first call cancels <see cref="Token"/>, the second
    /// writes a notice and ends the process with <see cref="ExitCode"/>.</summary>
    /// <param name="signal">The signal (named in the notice).</param>
    public void Raise(PosixSignal signal)
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            _cts.Cancel();
            return;
        }

        try
        {
            _error.WriteLine();
            _error.WriteLine($"{Name(signal)} again: stopping at once; the newest complete checkpoint is kept (a checkpoint being written is left as checkpoint-<step>.tmp and skipped by --resume).");
            _error.Flush();
            if (!Console.IsOutputRedirected)
            {
                // The live progress display hides the cursor; nothing restores it after an immediate exit.
                Console.Out.Write("\u001b[?25h");
                Console.Out.Flush();
            }
        }
        finally
        {
            _exit(ExitCode);
        }
    }

    /// <summary>Stops listening: the default signal behaviour returns.</summary>
    public void Dispose()
    {
        foreach (var r in _registrations)
        {
            r.Dispose();
        }

        _registrations.Clear();
        _cts.Dispose();
    }

    private static string Name(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGINT => "Ctrl-C",
        PosixSignal.SIGTERM => "SIGTERM",
        _ => signal.ToString(),
    };

    private static void ExitNow(int code)
    {
        if (!OperatingSystem.IsWindows())
        {
            try
            {
                PosixExit(code);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // No libc by that name: the managed exit below.
            }
        }

        Environment.Exit(code);
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void PosixExit(int code);

    private void OnSignal(PosixSignalContext context)
    {
        // Keep the process alive: the run stops itself after its current step (or Raise exits on the second signal).
        context.Cancel = true;
        Raise(context.Signal);
    }
}
