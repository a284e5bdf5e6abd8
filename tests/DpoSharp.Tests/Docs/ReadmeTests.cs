namespace DpoSharp.Tests.Docs;

/// <summary>README promises that are text only: where TRL 1.x differs from the TRL 0.28 DpoSharp follows, what the demo
/// numbers guarantee, and how to install.</summary>
public class ReadmeTests
{
    private static readonly string Readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"));

    /// <summary>The row of <paramref name="option"/> in the "Where TRL 1.x differs" table (option, difference).</summary>
    private static string OptionRow(string option) =>
        Assert.Single(Readme.Split('\n'), l => l.StartsWith($"| `{option}` | ", StringComparison.Ordinal) && l.Contains("TRL 1.x", StringComparison.Ordinal));

    [Theory]
    [InlineData("truncation_mode", "default `keep_start`")]
    [InlineData("label_smoothing", "no cDPO")]
    [InlineData("f_alpha_divergence_coef", "default 0.5")]
    [InlineData("rpo_alpha", "removed")]
    [InlineData("max_prompt_length", "removed")]
    [InlineData("reference_free", "removed")]
    [InlineData("loss_type", "rewards/")]
    [InlineData("ld_alpha", "reference log-probs get the same weighting")]
    [InlineData("simpo_gamma", "trl.experimental.cpo")]
    [InlineData("cpo_alpha", "trl.experimental.cpo")]
    public void TheOptionTableSaysWhereTrl1Differs(string option, string difference)
    {
        var row = OptionRow(option);
        Assert.Contains("TRL 1.x", row);
        Assert.Contains(difference, row);
    }

    [Fact]
    public void TheDemoNumbersSayWhatIsGuaranteed()
    {
        var demo = Section("## The demo");
        Assert.Contains("bit-identical", demo);
        Assert.Contains("same CPU model", demo);
        Assert.Contains("thread count", demo);
        Assert.Contains("96.0%", demo);                                   // another CPU's run, quoted as such
        Assert.DoesNotContain("5.42179 exactly", demo);
    }

    [Fact]
    public void InstallCoversTheToolTheLibraryAndCuda()
    {
        var install = Section("## Install");
        Assert.Contains("dotnet pack -c Release -o ./nupkg", install);
        Assert.Contains("dotnet tool install --global DpoSharp.Cli --add-source ./nupkg", install);
        Assert.Contains("dotnet add package DpoSharp ", install);
        Assert.Contains("dotnet add package TorchSharp-cpu", install);
        Assert.Contains("TorchSharp-cuda-linux", install);
        Assert.Contains("--device cuda", install);
        Assert.Contains("not published", install);
    }

    private static string Section(string heading)
    {
        int start = Readme.IndexOf(heading + "\n", StringComparison.Ordinal);
        Assert.True(start >= 0, heading);
        int end = Readme.IndexOf("\n## ", start + heading.Length, StringComparison.Ordinal);
        return Readme[start..(end < 0 ? Readme.Length : end)];
    }

    /// <summary>Every test "What happens when things go wrong" names (<c>Folder/Class</c>, <c>Folder/Class.Method</c>,
    /// and the methods listed in parentheses after a class) exists in this test assembly.</summary>
    [Fact]
    public void EveryTestTheGuaranteesNameExists()
    {
        var section = Readme[Readme.IndexOf("## What happens when things go wrong", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", 5, StringComparison.Ordinal)];
        var types = typeof(ReadmeTests).Assembly.GetTypes().ToDictionary(t => t.FullName!, StringComparer.Ordinal);
        var named = System.Text.RegularExpressions.Regex.Matches(section, @"`(?<folder>[A-Z][A-Za-z]*(?:/[A-Z][A-Za-z]*)*)/(?<type>[A-Z][A-Za-z]*Tests)(?:\.(?<method>[A-Za-z]+))?`(?: \((?<more>[^)]*)\))?");
        Assert.True(named.Count >= 10, $"only {named.Count} tests named");
        foreach (System.Text.RegularExpressions.Match m in named)
        {
            var fullName = "DpoSharp.Tests." + m.Groups["folder"].Value.Replace('/', '.') + "." + m.Groups["type"].Value;
            Assert.True(types.TryGetValue(fullName, out var type), $"README names {fullName}, which does not exist");
            var methods = new List<string>();
            if (m.Groups["method"].Success)
            {
                methods.Add(m.Groups["method"].Value);
            }

            methods.AddRange(System.Text.RegularExpressions.Regex.Matches(m.Groups["more"].Value, "`([A-Za-z]+)`").Select(x => x.Groups[1].Value));
            foreach (var method in methods)
            {
                Assert.True(type.GetMethod(method) is not null, $"README names {fullName}.{method}, which does not exist");
            }
        }
    }
}
