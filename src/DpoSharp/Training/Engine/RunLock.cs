namespace DpoSharp.Training.Engine;

/// <summary>
/// One run per output folder: an exclusive OS lock (<see cref="FileShare.None"/> on an open handle) on
/// <c>output_dir/.dposharp-run.lock</c>, held while a run trains. The operating system releases it when the process
/// ends, also on a crash or SIGKILL, so a crashed run never leaves the folder blocked (the file may stay; only the
/// lock matters).
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>Name of the lock file in output_dir.</summary>
    public const string FileName = ".dposharp-run.lock";

    private readonly FileStream _stream;

    private RunLock(FileStream stream) => _stream = stream;

    /// <summary>Takes the lock of <paramref name="outputDir"/> (created if missing).</summary>
    /// <exception cref="DpoSharpException">Another run (in this or another process) holds it; the message names the folder.</exception>
    public static RunLock Acquire(string outputDir)
    {
        ArgumentNullException.ThrowIfNull(outputDir);
        Directory.CreateDirectory(outputDir);
        var path = Path.Combine(outputDir, FileName);
        try
        {
            return new RunLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e) when (File.Exists(path))
        {
            throw new DpoSharpException(
                $"output_dir {outputDir} is in use by another running dposharp training run (it holds {path}); one run per folder. " +
                "Wait for that run to finish or stop it, or choose another --output-dir.", e);
        }
    }

    /// <summary>Throws as <see cref="Acquire"/> does when a run holds the lock of <paramref name="outputDir"/>; takes
    /// nothing (a check before any work; the run takes the lock when it starts).</summary>
    public static void ThrowIfHeld(string outputDir)
    {
        ArgumentNullException.ThrowIfNull(outputDir);
        if (File.Exists(Path.Combine(outputDir, FileName)))
        {
            Acquire(outputDir).Dispose();
        }
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _stream.Dispose();
}
