using System.Diagnostics;
using System.Text.RegularExpressions;
using DpoSharp.Models;
using DpoSharp.Tests.Cli.Commands;
using DpoSharp.Tokenization;

namespace DpoSharp.Tests.Samples;

/// <summary>
/// The README's C# examples are the Program.cs files of the projects under <c>samples/</c> (built with the solution, as
/// <c>dotnet new console</c> projects); these tests keep the two identical and run each sample on a tiny model laid
/// out under the paths the README uses (<c>./phi-2</c>, <c>./truthy-dpo-v0.1</c>).
/// </summary>
public partial class SampleTests
{
    private static readonly string[] Samples = ["LibraryQuickStart", "PreferenceData"];

    [Fact]
    public void EveryReadmeCSharpExampleIsASampleProgramCharacterForCharacter()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"));
        var blocks = CSharpBlock().Matches(Normalize(readme)).Select(m => m.Groups[1].Value).ToList();
        var programs = Samples.Select(s => Normalize(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "samples", s, "Program.cs")))).ToList();

        Assert.Equal(programs.Count, blocks.Count);
        Assert.All(programs, p => Assert.Contains(p, blocks));
    }

    [Fact]
    public void LibraryQuickStartTrainsAndSavesAModelWithItsTokenizer()
    {
        using var dir = TestPaths.CreateTempDir();
        LayOutReadmePaths(dir.Path);

        var (rc, output) = RunSample("LibraryQuickStart", dir.Path);

        Assert.True(rc == 0, output);
        Assert.Contains("step 10: loss=", output);                       // 16 pairs, batch 4, 3 epochs: 12 steps
        var saved = Path.Combine(dir.Path, "phi2-dpo");
        using var model = ModelLoader.Load(saved);
        Assert.NotEmpty(HfTokenizer.Load(saved).Encode("1+2="));         // tokenizer files copied by default
    }

    [Fact]
    public void PreferenceDataSampleBatchesEveryPair()
    {
        using var dir = TestPaths.CreateTempDir();
        LayOutReadmePaths(dir.Path);

        var (rc, output) = RunSample("PreferenceData", dir.Path);

        Assert.True(rc == 0, output);
        var batches = output.Split('\n').Where(l => l.StartsWith("batch ", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, batches.Count);                                    // 16 pairs in batches of 4
        Assert.All(batches, b => Assert.Matches(@"input_ids 8 x (8|16|24|32)\s*$", b));  // 2P rows, padded to a multiple of 8
    }

    /// <summary>A tiny Llama with a byte-level tokenizer as <c>./phi-2</c>, 16 pairs as <c>./truthy-dpo-v0.1/train.jsonl</c>.</summary>
    private static void LayOutReadmePaths(string root)
    {
        var (model, dataset) = CliTrainTests.WriteTinyJob(Path.Combine(root, "job"), rows: 16);
        Directory.Move(model, Path.Combine(root, "phi-2"));
        var data = Directory.CreateDirectory(Path.Combine(root, "truthy-dpo-v0.1")).FullName;
        File.Move(dataset, Path.Combine(data, "train.jsonl"));
    }

    private static (int Rc, string Output) RunSample(string name, string workingDirectory)
    {
        // The sample is built with the tests (a ProjectReference without the assembly), in the same configuration.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;   // bin/<Configuration>/net10.0
        var dll = Path.Combine(TestPaths.RepoRoot, "samples", name, "bin", configuration, "net10.0", name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first");
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd() + "\n";

    [GeneratedRegex(@"^```csharp\n(.*?)^```$", RegexOptions.Singleline | RegexOptions.Multiline)]
    private static partial Regex CSharpBlock();
}
