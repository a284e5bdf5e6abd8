using Xunit.Abstractions;
using static DpoSharp.Tests.TestSupport.CliRunner;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary><c>dposharp tokenize</c>, run in-process.</summary>
public sealed class CliTokenizeTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void PrintsGpt2IdsForTextAndFileLines()
    {
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/gpt2-openai");
        var (rc, o, _) = Run("tokenize", "--model", dir, "--text", "Hello world");
        Assert.Equal(0, rc);
        Assert.Equal("15496 995" + Environment.NewLine, o);

        using var tmp = TestPaths.CreateTempDir();
        var file = Path.Combine(tmp.Path, "in.txt");
        File.WriteAllText(file, "Hello world\n Hello world\n");
        (rc, o, _) = Run("tokenize", "--model", dir, "--file", file, "--add-special-tokens");
        Assert.Equal(0, rc);
        Assert.Equal(["15496 995", "18435 995"], o.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [SkippableFact]
    public void AddSpecialTokensPrependsLlamaBos()
    {
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2");
        var (rc, o, _) = Run("tokenize", "--model", dir, "--text", "Hello world", "--add-special-tokens");
        Assert.Equal(0, rc);
        Assert.Equal("1 15043 3186", o.Trim());
        (rc, o, _) = Run("tokenize", "--model", dir, "--text", "Hello world", "--text", "<s>");
        Assert.Equal(0, rc);
        Assert.Equal(["15043 3186", "1"], o.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void BadInputExitsWithCode2NamingWhatIsMissing()
    {
        using var tmp = TestPaths.CreateTempDir();
        var missing = Path.Combine(tmp.Path, "no-model");
        var (rc, _, err) = Run("tokenize", "--model", missing, "--text", "x");
        Assert.Equal(2, rc);
        Assert.Contains(missing, err);

        (rc, _, err) = Run("tokenize", "--model", tmp.Path, "--text", "x");
        Assert.Equal(2, rc);
        Assert.Contains("tokenizer.json", err);

        Tokenization.TokenizerBehaviourTests.WriteTinyByteLevel(tmp.Path);
        (rc, _, err) = Run("tokenize", "--model", tmp.Path, "--file", Path.Combine(tmp.Path, "absent.txt"));
        Assert.Equal(2, rc);
        Assert.Contains("absent.txt", err);

        (rc, _, err) = Run("tokenize", "--model", tmp.Path);
        Assert.Equal(2, rc);
        Assert.Contains("--text", err);

        (rc, var o, _) = Run("tokenize", "--model", tmp.Path, "--text", "abcab");
        Assert.Equal(0, rc);
        Assert.Equal("257 256", o.Trim()); // merges a+b, ab+c
    }
}
