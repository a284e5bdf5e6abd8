using System.Text;
using DpoSharp.Cli;

namespace DpoSharp.Tests.Data;

/// <summary>Every kind of bad input: a clear message naming file and row, exit code 2, and no output file.</summary>
public class BadInputTests
{
    /// <summary>Runs <c>dposharp data --dataset path --output out</c>; asserts exit 2, no output; returns stderr.</summary>
    private static string Fails(string path, string[]? extra = null)
    {
        using var outDir = TestPaths.CreateTempDir();
        var output = Path.Combine(outDir.Path, "normalized.jsonl");
        var err = new StringWriter();
        var rc = DpoSharpCli.Run(["data", "--dataset", path, "--output", output, .. extra ?? []], new StringWriter(), err);
        Assert.Equal(2, rc);
        Assert.False(File.Exists(output), "no output file may be written");
        Assert.Empty(Directory.GetFiles(outDir.Path));
        var text = err.ToString();
        Assert.StartsWith("error: ", text);
        return text;
    }

    private static string WriteFile(TempDir dir, string name, string content)
    {
        var path = Path.Combine(dir.Path, name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void InvalidJsonLinesNamesRowLineAndColumn()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "bad.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"a\", \"chosen\": }\n");
        var msg = Fails(path);
        Assert.Contains(path, msg);
        Assert.Contains("row 1", msg);
        Assert.Contains("invalid JSON at line 2, column 27", msg); // the '}' is the 27th byte of line 2
    }

    [Fact]
    public void InvalidJsonArrayNamesLineAndColumn()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "bad.json", "[\n  {\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"},\n  {\"prompt\": \"a\" \"chosen\": \"b\"}\n]\n");
        var msg = Fails(path);
        Assert.Contains("invalid JSON at line 3, column 18", msg); // the '"' opening "chosen" is byte 18 of line 3 (no comma before it)
        Assert.DoesNotContain("LineNumber", msg);
    }

    [Fact]
    public void MissingColumnListsTheColumnsThatExist()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.jsonl", "{\"question\": \"q\", \"good\": \"a\", \"bad\": \"b\"}\n");
        var msg = Fails(path);
        Assert.Contains("row 0 (line 1): missing column 'chosen'", msg);
        Assert.Contains("Columns present: question, good, bad", msg);
        Assert.Contains("--chosen-column", msg);

        var msg2 = Fails(path, ["--chosen-column", "good", "--rejected-column", "bad", "--prompt-column", "prompt"]);
        Assert.Contains("missing column 'prompt'", msg2);
    }

    [Fact]
    public void NonStringWhereStringRequired()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.jsonl", "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": \"p\", \"chosen\": 5, \"rejected\": \"b\"}\n");
        var msg = Fails(path);
        Assert.Contains("row 1 (line 2): column 'chosen' must be a string, found a number", msg);
    }

    [Fact]
    public void PromptOfWrongTypeIsReported()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.json", "[{\"prompt\": true, \"chosen\": \"a\", \"rejected\": \"b\"}]");
        Assert.Contains("row 0: column 'prompt' must be a string, found a boolean", Fails(path));
    }

    [Theory]
    [InlineData("\"\"", "chosen")]
    [InlineData("\"   \"", "chosen")]
    [InlineData("null", "chosen")]
    [InlineData("[]", "chosen")]
    public void EmptyChosenIsAnError(string value, string column)
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.jsonl", $"{{\"prompt\": \"p\", \"chosen\": {value}, \"rejected\": \"b\"}}\n");
        var msg = Fails(path);
        Assert.Contains($"row 0 (line 1): column '{column}'", msg);
        Assert.True(msg.Contains("is empty") || msg.Contains("is null"), msg);
    }

    [Fact]
    public void EmptyRejectedInCsv()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.csv", "prompt,chosen,rejected\np,a,b\np2,a2,\n");
        Assert.Contains("row 1 (line 3): column 'rejected' is empty", Fails(path));
    }

    [Fact]
    public void InvalidUtf8NamesRowAndByteOffset()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "pairs.jsonl");
        var line1 = Encoding.UTF8.GetBytes("{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        var line2a = Encoding.UTF8.GetBytes("{\"prompt\": \"caf");
        var line2b = Encoding.UTF8.GetBytes("\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        File.WriteAllBytes(path, [.. line1, .. line2a, 0xE9, .. line2b]); // Latin-1 'é'
        var msg = Fails(path);
        Assert.Contains("row 1 (line 2)", msg);
        Assert.Contains($"invalid UTF-8 at byte offset {line1.Length + line2a.Length}", msg);
        Assert.Contains("0xE9", msg);
    }

    [Fact]
    public void InvalidUtf8InCsv()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "pairs.csv");
        File.WriteAllBytes(path, [.. Encoding.UTF8.GetBytes("prompt,chosen,rejected\nx,"), 0xC3, 0x28, .. Encoding.UTF8.GetBytes(",b\n")]);
        var msg = Fails(path);
        Assert.Contains("invalid UTF-8 at byte offset 25 (line 2", msg);
    }

    [Theory]
    [InlineData("pairs.jsonl", "")]
    [InlineData("pairs.jsonl", "\n\n  \n")]
    [InlineData("pairs.json", "")]
    [InlineData("pairs.json", "[]")]
    [InlineData("pairs.csv", "")]
    [InlineData("pairs.csv", "prompt,chosen,rejected\n")]
    [InlineData("pairs.tsv", "  ")]
    [InlineData("pairs.parquet", "")]
    public void EmptyFile(string name, string content)
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, name, content);
        var msg = Fails(path);
        Assert.Contains(path, msg);
        Assert.Contains("empty", msg.Replace("no rows", "empty"));
    }

    [Fact]
    public async Task NullCellInParquet()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "pairs.parquet");
        var schema = new Parquet.Schema.ParquetSchema(
            new Parquet.Schema.DataField<string>("prompt"), new Parquet.Schema.DataField<string>("chosen"), new Parquet.Schema.DataField<string>("rejected"));
        var rows = new List<IDictionary<string, object?>>
        {
            new Dictionary<string, object?> { ["prompt"] = "p", ["chosen"] = "a", ["rejected"] = "b" },
            new Dictionary<string, object?> { ["prompt"] = "p", ["chosen"] = null, ["rejected"] = "b" },
        };
        await using (var fs = File.Create(path))
        {
            await Parquet.Serialization.ParquetSerializer.SerializeUntypedAsync(rows, schema, fs);
        }

        Assert.Contains("row 1: column 'chosen' is null", Fails(path));
    }

    [Fact]
    public void UnknownExtension()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.txt", "prompt chosen rejected");
        var msg = Fails(path);
        Assert.Contains("unknown file type '.txt'", msg);
        Assert.Contains(".jsonl", msg);
    }

    [Fact]
    public void DirectoryWithoutDataFiles()
    {
        using var dir = TestPaths.CreateTempDir();
        WriteFile(dir, "README.md", "# card");
        WriteFile(dir, "dataset_info.json", "{}");
        var msg = Fails(dir.Path);
        Assert.Contains("holds no data files", msg);
    }

    [Fact]
    public void MissingPath()
    {
        using var dir = TestPaths.CreateTempDir();
        Assert.Contains("no such file or folder", Fails(Path.Combine(dir.Path, "nope.jsonl")));
    }

    [Fact]
    public void NotParquet()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.parquet", "this is not parquet at all");
        Assert.Contains("not a readable Parquet file", Fails(path));
    }

    [Fact]
    public void CsvUnclosedQuoteAndFieldCount()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "a.csv", "prompt,chosen,rejected\np,\"never closed,b\n");
        Assert.Contains("line 2: a quoted field is never closed", Fails(path));
        var path2 = WriteFile(dir, "b.csv", "prompt,chosen,rejected\np,a,b,extra\n");
        Assert.Contains("row 0 (line 2): 4 fields, but the header has 3", Fails(path2));
    }

    [Fact]
    public void MixedShapesAcrossRows()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.jsonl",
            "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": \"p\", \"chosen\": [{\"role\": \"assistant\", \"content\": \"a\"}], \"rejected\": \"b\"}\n");
        var msg = Fails(path);
        Assert.Contains("row 1 (line 2): this row is conversational", msg);
        Assert.Contains("row 0 (line 1) is standard", msg);
    }

    [Fact]
    public void MessageWithoutRole()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.jsonl",
            "{\"chosen\": [{\"speaker\": \"user\", \"text\": \"hi\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n");
        var msg = Fails(path);
        Assert.Contains("column 'chosen' message 0 needs 'role' and 'content'", msg);
        Assert.Contains("speaker, text", msg);
    }

    [Fact]
    public void ContentPartsOtherThanText()
    {
        using var dir = TestPaths.CreateTempDir();
        var ok = WriteFile(dir, "ok.jsonl",
            "{\"prompt\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, {\"type\": \"text\", \"text\": \"b\"}]}], \"chosen\": \"c\", \"rejected\": \"d\"}\n");
        Assert.Equal("ab", DpoSharp.Data.PreferenceDatasetLoader.Load(ok).Examples[0].PromptMessages![0].Content);
        var path = WriteFile(dir, "pairs.jsonl",
            "{\"prompt\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\", \"text\": \"\"}]}], \"chosen\": \"c\", \"rejected\": \"d\"}\n");
        Assert.Contains("column 'prompt' message 0 has a \"image\" part; only text parts are supported", Fails(path));
    }

    [Fact]
    public void PreTokenizedNegativeId()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.jsonl", "{\"prompt_input_ids\": [1, 2], \"chosen_input_ids\": [3, -4], \"rejected_input_ids\": [5]}\n");
        Assert.Contains("column 'chosen_input_ids' item 1 is -4", Fails(path));
    }

    [Fact]
    public void JsonObjectWithoutList()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.json", "{\"name\": \"x\", \"count\": 3}");
        Assert.Contains("holds no list of row objects", Fails(path));
    }

    [Fact]
    public void InvalidOptions()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.jsonl", "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        Assert.Contains("keep_middle", Fails(path, ["--truncation-mode", "keep_middle"]));
        Assert.Contains("max_prompt_length (600) must be smaller than max_length (500)", Fails(path, ["--max-length", "500", "--max-prompt-length", "600"]));
        Assert.Contains("--show must be 0 or more", Fails(path, ["--show", "-1"]));
        Assert.Contains("both 'x'", Fails(path, ["--chosen-column", "x", "--rejected-column", "x"]));
    }

    [Fact]
    public void IdenticalPairsWarnButSucceed()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = WriteFile(dir, "pairs.jsonl", "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"a\"}\n{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        var output = Path.Combine(dir.Path, "out.jsonl");
        var stdout = new StringWriter();
        var rc = DpoSharpCli.Run(["data", "--dataset", path, "--output", output], stdout, new StringWriter());
        Assert.Equal(0, rc);
        Assert.Contains("warning:", stdout.ToString());
        Assert.Contains("1 pair(s) have identical chosen and rejected", stdout.ToString());
        Assert.Equal(2, File.ReadAllLines(output).Length);
    }
}
