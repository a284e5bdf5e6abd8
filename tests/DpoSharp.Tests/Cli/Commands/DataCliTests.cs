using DpoSharp.Cli;
using DpoSharp.Cli.Commands;
using DpoSharp.Data;
using DpoSharp.Tests.Data;
using Spectre.Console;

namespace DpoSharp.Tests.Cli.Commands;

public class DataCliTests
{
    [Theory]
    [InlineData("standard")]
    [InlineData("standard+system")]
    [InlineData("implicit-hh")]
    [InlineData("conversational")]
    [InlineData("sharegpt")]
    [InlineData("pre-tokenized")]
    public void OutputIsNormalizedJsonlThatLoadsBackToTheSamePairs(string shape)
    {
        var (rows, options, expected) = DatasetShapeTests.Shapes[shape];
        using var dir = TestPaths.CreateTempDir();
        var path = DataFiles.Write(dir.Path, "pairs", "jsonl", rows.Select(DataFiles.Obj).ToList());
        var outFile = Path.Combine(dir.Path, "out", "normalized.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(outFile)!);
        var stdout = new StringWriter();
        var rc = DpoSharpCli.Run(["data", "--dataset", path, "--output", outFile, "--show", "1"], stdout, new StringWriter());
        Assert.Equal(0, rc);
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(outFile)!)); // no temporary file left behind
        var back = PreferenceDatasetLoader.Load(outFile);

        // Reloading the normalized file gives the same pairs, now with an explicit prompt.
        Assert.Equal(expected.Select(e => e.Replace("|extracted", "|explicit")), back.Examples.Select(DatasetShapeTests.Describe));
        Assert.Contains("pair 0", stdout.ToString());
    }

    [Fact]
    public void NormalizedLineFormat()
    {
        var e = new PreferenceExample
        {
            Format = PreferenceFormat.Conversational,
            PromptMessages = [new("user", "Hi \"you\" é")],
            ChosenMessages = [new("assistant", "a")],
            RejectedMessages = [new("assistant", "b")],
        };
        Assert.Equal(
            """{"prompt":[{"role":"user","content":"Hi \"you\" é"}],"chosen":[{"role":"assistant","content":"a"}],"rejected":[{"role":"assistant","content":"b"}]}""",
            NormalizedJsonlWriter.ToJson(e));
        var s = new PreferenceExample { Format = PreferenceFormat.Standard, Prompt = "p", Chosen = "c", Rejected = "r" };
        Assert.Equal("""{"prompt":"p","chosen":"c","rejected":"r"}""", NormalizedJsonlWriter.ToJson(s));
    }

    [Fact]
    public void ShowWithoutModelMarksTheBoundaryAndLineBreaks()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "hh.jsonl");
        File.WriteAllText(path, "{\"chosen\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello\", \"rejected\": \"\\n\\nHuman: Hi\\n\\nAssistant: Bye\"}\n");
        var stdout = new StringWriter();
        Assert.Equal(0, DpoSharpCli.Run(["data", "--dataset", path, "--show", "1"], stdout, new StringWriter()));
        var text = stdout.ToString();
        Assert.Contains("Human: Hi↵", text);
        Assert.Contains("Assistant:" + DataCommand.Boundary + " Hello", text);
        Assert.Contains("Assistant:" + DataCommand.Boundary + " Bye", text);
        Assert.Contains("length (characters)", text);
    }

    [Fact]
    public void ShowWithTokenizerRendersTheChatTemplateAndSpecialTokens()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "chat.jsonl");
        File.WriteAllText(path,
            "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"yo\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"no\"}]}\n");
        var stdout = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No });
        var settings = new DataCommandSettings { Dataset = path, Show = 1 };
        Assert.Equal(0, DataCommand.Execute(settings, new CharTokenizer { AddsBosToken = true, TemplateStartsWithBos = true }, console));
        var text = stdout.ToString();
        Assert.Contains("chosen:   <s><|im_start|>user↵", text);
        Assert.Contains("<|im_start|>assistant↵\n" + DataCommand.Boundary + "yo<|im_end|>↵", text);
        Assert.Contains(DataCommand.Boundary + "no<|im_end|>↵", text);
        Assert.Contains("pairs kept", text);
    }

    [Fact]
    public void NoPairSurvivingTokenizationIsBadInput()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "long.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"0123456789\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        var outFile = Path.Combine(dir.Path, "o.jsonl");
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(new StringWriter()) });
        var settings = new DataCommandSettings
        {
            Dataset = path,
            Output = outFile,
            TokenizationOptions = new TokenizationOptions { MaxLength = 8, MaxPromptLength = null },
        };
        var ex = Assert.Throws<DpoSharpException>(() => DataCommand.Execute(settings, new CharTokenizer(), console));
        Assert.Contains("no pair survives tokenization", ex.Message);
        Assert.Contains(PairTokenizer.PromptTooLong + ": 1", ex.Message);
        Assert.False(File.Exists(outFile));
    }

    [Fact]
    public void DatasetFolderAndSplitFromTheCommandLine()
    {
        using var dir = TestPaths.CreateTempDir();
        File.WriteAllText(Path.Combine(dir.Path, "train.jsonl"), "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        File.WriteAllText(Path.Combine(dir.Path, "test.jsonl"), "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": \"r\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        var stdout = new StringWriter();
        Assert.Equal(0, DpoSharpCli.Run(["data", "--dataset", dir.Path, "--split", "test"], stdout, new StringWriter()));
        Assert.Contains("test (available: test, train)", stdout.ToString());
        var err = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["data", "--dataset", dir.Path, "--split", "dev"], new StringWriter(), err));
        Assert.Contains("no split 'dev'", err.ToString());
    }
}
