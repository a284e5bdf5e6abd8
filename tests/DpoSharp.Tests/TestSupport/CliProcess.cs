using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// The <c>dposharp</c> CLI as a child process (<c>dotnet DpoSharp.Cli.dll …</c> from the test's output folder) with
/// one intra-op thread: CPU kernels are bit-reproducible for a fixed thread count, so two child runs can be compared
/// bit for bit. Collects stdout and stderr; can send POSIX signals.
/// </summary>
internal sealed class CliProcess : IDisposable
{
    /// <summary>SIGINT (Ctrl-C).</summary>
    public const int SigInt = 2;

    /// <summary>SIGTERM.</summary>
    public const int SigTerm = 15;

    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private CliProcess(string[] args)
    {
        _process = Process.Start(StartInfo(args))!;
        _process.OutputDataReceived += (_, e) => Append(_out, e.Data);
        _process.ErrorDataReceived += (_, e) => Append(_err, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The child's process id.</summary>
    public int Id => _process.Id;

    /// <summary>True once the child has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The exit code (after <see cref="WaitForExit"/>).</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Standard output so far.</summary>
    public string Out
    {
        get
        {
            lock (_out)
            {
                return _out.ToString();
            }
        }
    }

    /// <summary>Standard error so far.</summary>
    public string Err
    {
        get
        {
            lock (_err)
            {
                return _err.ToString();
            }
        }
    }

    /// <summary>Starts <c>dposharp <paramref name="args"/></c>.</summary>
    public static CliProcess Start(params string[] args) => new(args);

    /// <summary>Runs <c>dposharp <paramref name="args"/></c> to the end; returns the exit code, stdout and stderr.</summary>
    public static (int Rc, string Out, string Err) Run(params string[] args)
    {
        using var p = Start(args);
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(3)), "the CLI did not finish within 3 minutes");
        return (p.ExitCode, p.Out, p.Err);
    }

    /// <summary>The start info of a child CLI: <c>dotnet DpoSharp.Cli.dll</c>, one intra-op thread, output redirected.</summary>
    public static ProcessStartInfo StartInfo(string[] args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DpoSharp.Cli.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["OMP_NUM_THREADS"] = "1";
        psi.Environment["MKL_NUM_THREADS"] = "1";
        return psi;
    }

    /// <summary>Sends POSIX signal <paramref name="signal"/> to the child.</summary>
    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds or the child exits; false on timeout or exit.</summary>
    public bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (condition())
            {
                return true;
            }

            if (_process.HasExited)
            {
                return condition();
            }

            Thread.Sleep(5);
        }

        return false;
    }

    /// <summary>Waits for the child to exit and its output to be read; false on timeout.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            return false;
        }

        _process.WaitForExit();   // drains the redirected output
        return true;
    }

    /// <summary>Kills the child (SIGKILL: no handler runs).</summary>
    public void Kill() => _process.Kill();

    /// <summary>Kills the child if it still runs.</summary>
    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.AppendLine(line);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}

/// <summary>A fact that needs POSIX signals: skipped on Windows.</summary>
internal sealed class PosixFactAttribute : FactAttribute
{
    /// <summary>Skips on Windows.</summary>
    public PosixFactAttribute()
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = "POSIX signals (kill -INT) are not available on Windows.";
        }
    }
}
