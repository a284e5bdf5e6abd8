namespace DpoSharp.IO;

/// <summary>
/// Writes a file so that it appears complete or not at all: the content goes to a hidden temporary file beside the
/// target (<c>.name.xxxxxxxx.tmp</c>), which is renamed over the target once written and deleted on any failure.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>, atomically.</summary>
    /// <param name="path">The target file; its folder must exist.</param>
    /// <param name="write">Writes the content to the temporary file's stream.</param>
    /// <param name="overwrite">Replace an existing target; otherwise an existing one makes the rename fail.</param>
    /// <param name="flushToDisk">Flush the content to the disk before the rename (survives a power cut).</param>
    public static void Write(string path, Action<FileStream> write, bool overwrite = true, bool flushToDisk = false)
    {
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk);
            }

            File.Move(temp, full, overwrite);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }
}
