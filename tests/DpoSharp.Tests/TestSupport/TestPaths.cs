using Xunit.Abstractions;

namespace DpoSharp.Tests.TestSupport;

/// <summary>Paths tests need: the repository root and the shared conformance material beside it.</summary>
public static class TestPaths
{
    /// <summary>The repository root (the folder holding DpoSharp.slnx).</summary>
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>
    /// The environment variable that points the shared-material lookup at another folder than <c>../shared/</c>
    /// beside the repository. Set it to a folder that does not exist to see what a user's clone reports
    /// (<c>DPOSHARP_SHARED_DIR=/nonexistent dotnet test -c Release</c>: every conformance test is skipped with its
    /// reason).
    /// </summary>
    public const string SharedDirVariable = "DPOSHARP_SHARED_DIR";

    /// <summary>How the skip reason of a test that lacks the shared material begins.</summary>
    public const string SkipReasonPrefix = "needs the shared conformance material:";

    /// <summary>
    /// The shared conformance material: <see cref="SharedDirVariable"/> when set, else <c>../shared/</c> beside the
    /// repository (CI and the developers have it; users' clones do not).
    /// </summary>
    public static string SharedDir => Environment.GetEnvironmentVariable(SharedDirVariable) is { Length: > 0 } dir
        ? Path.GetFullPath(dir)
        : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    /// <summary>
    /// Full path of <paramref name="relative"/> under <see cref="SharedDir"/>. When it is absent the test is
    /// reported as skipped with the reason (a <see cref="SkipException"/>): call this only from a <c>[SkippableFact]</c> or a
    /// <c>[SkippableTheory]</c>, where a skip is not a failure. <c>.ci/run</c> fails a run that skips any test when
    /// <c>../shared</c> is present.
    /// </summary>
    public static string SharedOrSkip(ITestOutputHelper output, string relative) => SharedOrSkip(output, relative, SharedDir);

    /// <summary><see cref="SharedOrSkip(ITestOutputHelper, string)"/> under <paramref name="sharedDir"/>.</summary>
    internal static string SharedOrSkip(ITestOutputHelper output, string relative, string sharedDir)
    {
        ArgumentNullException.ThrowIfNull(output);
        var path = Path.GetFullPath(Path.Combine(sharedDir, relative));
        if (File.Exists(path) || Directory.Exists(path))
        {
            return path;
        }

        var reason = $"{SkipReasonPrefix} {path} is absent (../shared/ beside the repository, or ${SharedDirVariable})";
        output.WriteLine("SKIPPED: " + reason);
        throw new SkipException(reason);
    }

    /// <summary>A fresh temporary directory, deleted when disposed.</summary>
    public static TempDir CreateTempDir() => new();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "DpoSharp.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("DpoSharp.slnx not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A temporary directory removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    /// <summary>Creates the directory.</summary>
    public TempDir() => Path = Directory.CreateTempSubdirectory("dposharp-test-").FullName;

    /// <summary>Full path.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
