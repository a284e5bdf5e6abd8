using Xunit.Abstractions;

namespace DpoSharp.Tests.TestSupport;

/// <summary>Paths tests need: the repository root and the shared conformance material beside it.</summary>
public static class TestPaths
{
    /// <summary>The repository root (the folder holding DpoSharp.slnx).</summary>
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>
    /// Full path of <paramref name="relative"/> under <c>../shared/</c>, or null (after writing a visible
    /// "SKIPPED" line to the test output) when the shared folder is absent, as it is for users' clones.
    /// </summary>
    public static string? SharedOrSkip(ITestOutputHelper output, string relative)
    {
        var path = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", relative));
        if (File.Exists(path) || Directory.Exists(path))
        {
            return path;
        }

        output.WriteLine($"SKIPPED: {path} is absent (the shared conformance material lives beside the repository).");
        return null;
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
