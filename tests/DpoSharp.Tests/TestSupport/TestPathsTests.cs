using System.Diagnostics;
using System.Reflection;
using Xunit.Abstractions;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// Tests that need <c>../shared/</c> are reported as skipped, with the reason, where it is absent (a user's clone),
/// never as passed.
/// </summary>
public sealed class TestPathsTests(ITestOutputHelper output)
{
    [Fact]
    public void SharedOrSkipReturnsThePathOrSkipsNamingTheMissingMaterial()
    {
        using var dir = TestPaths.CreateTempDir();
        Directory.CreateDirectory(Path.Combine(dir.Path, "data", "tokenizers", "gpt2-openai"));
        Assert.Equal(
            Path.Combine(dir.Path, "data", "tokenizers", "gpt2-openai"),
            TestPaths.SharedOrSkip(output, "data/tokenizers/gpt2-openai", dir.Path));

        var skip = Assert.Throws<SkipException>(() => TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2", dir.Path));
        Assert.StartsWith(TestPaths.SkipReasonPrefix, skip.Message);
        Assert.Contains(Path.Combine(dir.Path, "data", "tokenizers", "llama-2"), skip.Message);
        Assert.Contains(TestPaths.SharedDirVariable, skip.Message);
    }

    /// <summary>A plain <c>[Fact]</c> would report the skip as a failure: every caller must be skippable.</summary>
    [Fact]
    public void EveryTestThatLooksUpSharedMaterialIsASkippableFactOrTheory()
    {
        var lookup = typeof(TestPaths).GetMethod(nameof(TestPaths.SharedOrSkip), [typeof(ITestOutputHelper), typeof(string)])!;
        var callers = typeof(TestPaths).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttributes<FactAttribute>().Any() && Calls(m, lookup))
            .ToList();

        Assert.True(callers.Count >= 20, $"only {callers.Count} tests look up ../shared");
        var notSkippable = callers
            .Where(m => !m.GetCustomAttributes().Any(a => a is SkippableFactAttribute or SkippableTheoryAttribute))
            .Select(m => m.DeclaringType!.Name + "." + m.Name)
            .ToList();
        Assert.Empty(notSkippable);
    }

    /// <summary>
    /// What a clone without <c>../shared/</c> sees: <c>dotnet test</c> (this test assembly, one class of conformance
    /// tests, in a child process with <see cref="TestPaths.SharedDirVariable"/> pointing at an empty folder) counts
    /// them as skipped and prints why.
    /// </summary>
    [Fact]
    public async Task WithoutSharedMaterialDotnetTestCountsTheConformanceTestsAsSkipped()
    {
        using var empty = TestPaths.CreateTempDir();
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = empty.Path,
        };
        foreach (var a in new[] { "test", typeof(TestPaths).Assembly.Location, "--filter", "FullyQualifiedName~DpoSharp.Tests.Cli.Commands.CliTokenizeTests", "--logger", "console;verbosity=normal" })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment[TestPaths.SharedDirVariable] = Path.Combine(empty.Path, "no-shared");
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        var text = stdout + await stderr;
        output.WriteLine(text);

        Assert.Equal(0, p.ExitCode);   // a skip is not a failure
        Assert.Matches(@"(?m)^\s*Skipped:\s+2\s*$", text);
        Assert.Matches(@"(?m)^\s*Passed:\s+1\s*$", text);
        Assert.Contains("Skipped DpoSharp.Tests.Cli.Commands.CliTokenizeTests.PrintsGpt2IdsForTextAndFileLines", text);
        Assert.Contains(TestPaths.SkipReasonPrefix + " " + Path.Combine(empty.Path, "no-shared", "data", "tokenizers", "llama-2") + " is absent", text);
    }

    private static bool Calls(MethodInfo method, MethodInfo target)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            return false;
        }

        for (int i = 0; i + 4 < il.Length; i++)
        {
            if (il[i] != 0x28)   // call <method token>
            {
                continue;
            }

            try
            {
                if (method.Module.ResolveMethod(BitConverter.ToInt32(il, i + 1)) is MethodInfo m && m == target)
                {
                    return true;
                }
            }
            catch (ArgumentException)
            {
                // not a method token: a byte of another instruction's operand
            }
        }

        return false;
    }
}
