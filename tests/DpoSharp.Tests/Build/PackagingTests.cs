using System.Diagnostics;
using System.Text.Json.Nodes;

namespace DpoSharp.Tests.Build;

/// <summary>
/// Package metadata, read by evaluating the projects with MSBuild (<c>dotnet msbuild -getItem/-getProperty</c>, well under
/// a second each; no pack): the library depends on TorchSharp and lets the app choose the runtime, and the CLI packs as
/// RID-specific .NET tool packages.
/// </summary>
public class PackagingTests
{
    [Fact]
    public void TheLibraryPackageDependsOnTorchSharpNotOnARuntimePackage()
    {
        var result = Evaluate("src/DpoSharp/DpoSharp.csproj", ["PackageReference", "PackageVersion", "None"],
            ["PackageId", "IsPackable", "PackageLicenseExpression", "PackageReadmeFile", "Description", "RepositoryType"]);

        // What becomes a nuspec dependency: PackageReferences without PrivateAssets=all.
        var dependencies = Items(result, "PackageReference")
            .Where(r => !string.Equals((string?)r["PrivateAssets"], "all", StringComparison.OrdinalIgnoreCase))
            .Select(r => (string)r["Identity"]!)
            .ToList();
        Assert.Contains("TorchSharp", dependencies);
        Assert.DoesNotContain(dependencies, d => d.StartsWith("TorchSharp-", StringComparison.OrdinalIgnoreCase) || d.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase));
        var versions = Items(result, "PackageVersion").ToDictionary(v => (string)v["Identity"]!, v => (string)v["Version"]!);
        Assert.Equal(versions["TorchSharp-cpu"], versions["TorchSharp"]);   // the runtime the CLI and tests use matches

        var p = result["Properties"]!;
        Assert.Equal("DpoSharp", (string?)p["PackageId"]);
        Assert.Equal("true", (string?)p["IsPackable"]);
        Assert.Equal("MIT", (string?)p["PackageLicenseExpression"]);
        Assert.True(File.Exists(Path.Combine(TestPaths.RepoRoot, "LICENSE")));
        Assert.Equal("README.md", (string?)p["PackageReadmeFile"]);
        Assert.Contains(Items(result, "None"), n => (string?)n["Pack"] == "true" && (string?)n["Filename"] + (string?)n["Extension"] == "README.md" && (string?)n["PackagePath"] == "/");
        Assert.Contains("TorchSharp-cpu", (string?)p["Description"]);       // tells the app to add a runtime
        Assert.Equal("git", (string?)p["RepositoryType"]);
    }

    [Fact]
    public void TheCliPacksAsRidSpecificToolPackagesWithTheCpuRuntime()
    {
        string[] properties = ["PackAsTool", "ToolCommandName", "ToolPackageRuntimeIdentifiers", "RuntimeIdentifiers", "PackageLicenseExpression", "PackageReadmeFile"];
        var building = Evaluate("src/DpoSharp.Cli/DpoSharp.Cli.csproj", ["PackageReference"], properties);
        var packing = Evaluate("src/DpoSharp.Cli/DpoSharp.Cli.csproj", [], properties, "_IsPacking=true");

        Assert.Contains(Items(building, "PackageReference"), r => (string?)r["Identity"] == "TorchSharp-cpu");
        var p = packing["Properties"]!;
        Assert.Equal("true", (string?)p["PackAsTool"]);
        Assert.Equal("dposharp", (string?)p["ToolCommandName"]);
        var rids = ((string)p["ToolPackageRuntimeIdentifiers"]!).Split(';', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["linux-x64", "win-x64", "osx-arm64"], rids);
        Assert.Equal(rids, ((string)p["RuntimeIdentifiers"]!).Split(';', StringSplitOptions.RemoveEmptyEntries));   // restored while packing
        Assert.Equal("", (string?)building["Properties"]!["RuntimeIdentifiers"]);                                     // not for ordinary builds
        Assert.Equal("MIT", (string?)p["PackageLicenseExpression"]);
        Assert.Equal("README.md", (string?)p["PackageReadmeFile"]);
    }

    private static IEnumerable<JsonObject> Items(JsonNode result, string type) =>
        (result["Items"]?[type] as JsonArray ?? []).OfType<JsonObject>();

    /// <summary>Evaluates <paramref name="project"/> (no build, no restore) and returns MSBuild's JSON answer.</summary>
    private static JsonNode Evaluate(string project, string[] items, string[] properties, params string[] globalProperties)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = TestPaths.RepoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "msbuild", Path.Combine(TestPaths.RepoRoot, project), "-nologo", "-nodeReuse:false" })
        {
            psi.ArgumentList.Add(a);
        }

        // Always ask for two things or more: with one, MSBuild prints the bare value instead of JSON.
        foreach (var i in items.Append("DpoSharpNoSuchItem"))
        {
            psi.ArgumentList.Add("-getItem:" + i);
        }

        foreach (var prop in properties.Append("DpoSharpNoSuchProperty"))
        {
            psi.ArgumentList.Add("-getProperty:" + prop);
        }

        foreach (var g in globalProperties)
        {
            psi.ArgumentList.Add("-property:" + g);
        }

        // The test host may carry the outer MSBuild's variables; the child evaluates on its own.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("MSBuild", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, stdout.Result + stderr.Result);
        return JsonNode.Parse(stdout.Result)!;
    }
}
