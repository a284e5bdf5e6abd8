using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DpoSharp.Native;

/// <summary>
/// Start-up half of the libstdc++ fix (the build-time half is <c>build/DpoSharp.Native.targets</c>): before
/// TorchSharp is first touched through DpoSharp, patch the <c>libLibTorchSharp.so</c> the app will load if
/// the system libstdc++ lacks a version it needs. Runs from the module initializer, so any app that uses a
/// DpoSharp type first is covered; apps that call TorchSharp directly before any DpoSharp type can call
/// <see cref="EnsureLoadable"/> first.
/// </summary>
public static class TorchSharpRuntime
{
    private static readonly object Gate = new();
    private static bool _done;

    /// <summary>What the start-up check did (one line per library file), for <c>dposharp info</c>.</summary>
    public static IReadOnlyList<string> PatchLog { get; private set; } = [];

    /// <summary>The error the start-up patch met, if any (the load that follows will then fail too).</summary>
    public static string? PatchError { get; private set; }

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "Must run before TorchSharp loads.")]
    internal static void Initialize() => EnsureLoadable();

    /// <summary>Patches the app's libLibTorchSharp.so when needed. Idempotent and cheap after the first call.</summary>
    public static void EnsureLoadable()
    {
        lock (Gate)
        {
            if (_done)
            {
                return;
            }

            _done = true;
            if (!OperatingSystem.IsLinux())
            {
                return;
            }

            try
            {
                var log = new List<string>();
                foreach (var dir in CandidateDirectories())
                {
                    log.AddRange(LibStdCxxVersionPatcher.PatchDirectory(dir));
                }

                PatchLog = log;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                PatchError = $"could not patch libLibTorchSharp.so for this system's libstdc++: {e.Message}. " +
                             "Make the application folder writable once, or build the app with DpoSharp's build targets.";
            }
        }
    }

    private static IEnumerable<string> CandidateDirectories()
    {
        var baseDir = AppContext.BaseDirectory;
        var rid = RuntimeInformation.RuntimeIdentifier;
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        var native = new[] { Path.Combine(baseDir, "runtimes", rid, "native"), Path.Combine(baseDir, "runtimes", "linux-" + arch, "native") };
        foreach (var dir in native.Distinct().Where(Directory.Exists))
        {
            yield return dir;
        }

        // Self-contained / flattened layouts put the native files next to the app.
        if (File.Exists(Path.Combine(baseDir, "libLibTorchSharp.so")))
        {
            yield return baseDir;
        }
    }
}
