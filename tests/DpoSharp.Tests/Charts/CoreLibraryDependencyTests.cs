using System.Text.RegularExpressions;
using System.Xml.Linq;
using DpoSharp.Training;

namespace DpoSharp.Tests.Charts;

/// <summary>The core library carries only what training needs: charts (ScottPlot) and the demo live in their own projects.</summary>
public partial class CoreLibraryDependencyTests
{
    private static string LibraryDir => Path.Combine(TestPaths.RepoRoot, "src", "DpoSharp");

    [Fact]
    public void TheLibraryProjectHasNoScottPlotReference()
    {
        var project = XDocument.Load(Path.Combine(LibraryDir, "DpoSharp.csproj"));
        var references = project.Descendants()
            .Where(e => e.Name.LocalName is "PackageReference" or "ProjectReference")
            .Select(e => (string?)e.Attribute("Include") ?? "")
            .ToList();
        Assert.NotEmpty(references);
        Assert.DoesNotContain(references, r => r.Contains("ScottPlot", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(references, r => r.Contains("DpoSharp.Charts", StringComparison.Ordinal) || r.Contains("DpoSharp.Demo", StringComparison.Ordinal));

        // The built assembly agrees.
        var assemblies = typeof(DpoOptions).Assembly.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.DoesNotContain(assemblies, a => a is "ScottPlot" or "SkiaSharp" or "DpoSharp.Charts" or "DpoSharp.Demo");
    }

    [Fact]
    public void NoLibrarySourceUsesScottPlotOrTheDemoNamespace()
    {
        var sources = Directory.EnumerateFiles(LibraryDir, "*.cs", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(LibraryDir, f).Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .ToList();
        Assert.NotEmpty(sources);
        Assert.False(Directory.Exists(Path.Combine(LibraryDir, "Demo")) && Directory.EnumerateFiles(Path.Combine(LibraryDir, "Demo")).Any(), "src/DpoSharp/Demo/ should be gone");
        var offenders = sources
            .Where(f => ForbiddenUse().IsMatch(File.ReadAllText(f)))
            .Select(f => Path.GetRelativePath(TestPaths.RepoRoot, f))
            .ToList();
        Assert.Empty(offenders);
    }

    /// <summary>A using of, or a qualified name in, ScottPlot or DpoSharp.Demo; or declaring the DpoSharp.Demo namespace.</summary>
    [GeneratedRegex(@"\bScottPlot\s*\.|\busing\s+(static\s+)?(\w+\s*=\s*)?(global::)?ScottPlot\b|\bDpoSharp\.Demo\b")]
    private static partial Regex ForbiddenUse();
}
