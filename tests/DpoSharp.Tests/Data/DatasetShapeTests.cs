using System.Text.Json.Nodes;
using DpoSharp.Data;

namespace DpoSharp.Tests.Data;

/// <summary>Every dataset shape TRL accepts, written as every supported file type, normalizes to the same pairs.</summary>
public class DatasetShapeTests
{
    public static readonly Dictionary<string, (string[] Rows, DatasetOptions Options, string[] Expected)> Shapes = new()
    {
        ["standard"] = (
            [
                """{"prompt": "What is 2+2?", "chosen": " 4", "rejected": " 5"}""",
                """{"prompt": "Say \"hi\", friend\nnow", "chosen": "Hi, \"friend\"!\r\nBye", "rejected": "No\ttab."}""",
            ],
            new DatasetOptions(),
            [
                "S|<none>|What is 2+2?| 4| 5|explicit",
                "S|<none>|Say \"hi\", friend\nnow|Hi, \"friend\"!\r\nBye|No\ttab.|explicit",
            ]),
        ["standard+system"] = (
            ["""{"id": "a1", "system": "Be truthful.", "prompt": "Is the earth flat?", "chosen": "No.", "rejected": "Yes."}"""],
            new DatasetOptions(),
            ["S|Be truthful.|Is the earth flat?|No.|Yes.|explicit"]),
        ["implicit-hh"] = (
            ["""{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello there", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away"}"""],
            new DatasetOptions(),
            ["S|<none>|\n\nHuman: Hi\n\nAssistant:| Hello there| Go away|extracted"]),
        ["conversational"] = (
            ["""{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello"}], "rejected": [{"role": "assistant", "content": "Go away"}]}"""],
            new DatasetOptions(),
            ["C|user:Hi|assistant:Hello|assistant:Go away|explicit"]),
        ["conversational-implicit"] = (
            ["""{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away"}]}"""],
            new DatasetOptions(),
            ["C|user:Hi|assistant:Hello|assistant:Go away|extracted"]),
        ["sharegpt"] = (
            ["""{"conversations": [{"from": "system", "value": "Sys"}, {"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello"}, "rejected": {"from": "gpt", "value": "Go away"}}"""],
            new DatasetOptions(),
            ["C|system:Sys;user:Hi|assistant:Hello|assistant:Go away|explicit"]),
        ["prompt-string+message-lists"] = (
            ["""{"prompt": "Hi", "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go"}]}"""],
            new DatasetOptions(),
            ["C|user:Hi|assistant:Hello|assistant:Go|explicit"]),
        ["pre-tokenized"] = (
            ["""{"prompt_input_ids": [1, 20, 30], "chosen_input_ids": [40, 2], "rejected_input_ids": [50]}"""],
            new DatasetOptions(),
            ["T|1,20,30|40,2|50"]),
        ["column-mapping"] = (
            ["""{"question": "Q?", "prefered_response": "Good", "disprefered_response": "Bad"}"""],
            new DatasetOptions { PromptColumn = "question", ChosenColumn = "prefered_response", RejectedColumn = "disprefered_response" },
            ["S|<none>|Q?|Good|Bad|explicit"]),
    };

    public static IEnumerable<object[]> Cases() =>
        from shape in Shapes.Keys from kind in DataFiles.Kinds select new object[] { shape, kind };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ShapeLoadsFromFileType(string shape, string kind)
    {
        var (rows, options, expected) = Shapes[shape];
        using var dir = TestPaths.CreateTempDir();
        var path = DataFiles.Write(dir.Path, "pairs", kind, rows.Select(DataFiles.Obj).ToList());
        var ds = PreferenceDatasetLoader.Load(path, options);
        Assert.Equal(expected, ds.Examples.Select(Describe).ToArray());
        Assert.All(ds.Examples, e => Assert.Equal(path, e.SourceFile));
        Assert.Equal(Enumerable.Range(0, rows.Length), ds.Examples.Select(e => e.SourceRow));
    }

    [Fact]
    public void HuggingFaceFolderPicksSplitsFromFileNames()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = Directory.CreateDirectory(Path.Combine(dir.Path, "data")).FullName;
        var row = (string p) => DataFiles.Obj($$"""{"prompt": "{{p}}", "chosen": "c", "rejected": "r"}""");
        DataFiles.WriteParquet(Path.Combine(data, "train-00000-of-00002.parquet"), [row("t0"), row("t1")]);
        DataFiles.WriteParquet(Path.Combine(data, "train-00001-of-00002.parquet"), [row("t2")]);
        File.WriteAllLines(Path.Combine(data, "test-00000-of-00001.jsonl"), [row("x0").ToJsonString()]);
        File.WriteAllText(Path.Combine(dir.Path, "README.md"), "# card");
        File.WriteAllText(Path.Combine(dir.Path, "dataset_info.json"), "{}");

        var train = PreferenceDatasetLoader.Load(dir.Path);
        Assert.Equal("train", train.Split);
        Assert.Equal(["test", "train"], train.AvailableSplits);
        Assert.Equal(["t0", "t1", "t2"], train.Examples.Select(e => e.Prompt));
        Assert.Equal(2, train.Files.Count);

        var test = PreferenceDatasetLoader.Load(dir.Path, new DatasetOptions { Split = "test" });
        Assert.Equal(["x0"], test.Examples.Select(e => e.Prompt));

        var ex = Assert.Throws<DpoSharpException>(() => PreferenceDatasetLoader.Load(dir.Path, new DatasetOptions { Split = "validation" }));
        Assert.Contains("no split 'validation'", ex.Message);
        Assert.Contains("test, train", ex.Message);
    }

    [Fact]
    public void FolderWithOneUnnamedFileIsTrain()
    {
        // truthy-dpo-v0.1 as downloaded: README.md + truthy-dpo.parquet
        using var dir = TestPaths.CreateTempDir();
        DataFiles.WriteParquet(Path.Combine(dir.Path, "truthy-dpo.parquet"),
            [DataFiles.Obj("""{"id": "1", "source": "s", "system": "Be honest.", "prompt": "P", "chosen": "C", "rejected": "R"}""")]);
        var ds = PreferenceDatasetLoader.Load(dir.Path);
        Assert.Equal("train", ds.Split);
        Assert.Equal("S|Be honest.|P|C|R|explicit", Describe(ds.Examples[0]));
    }

    [Fact]
    public void SameSplitInSeveralFormatsIsReadOnce()
    {
        using var dir = TestPaths.CreateTempDir();
        var row = DataFiles.Obj("""{"prompt": "p", "chosen": "c", "rejected": "r"}""");
        DataFiles.Write(dir.Path, "train", "json-array", [row]);
        Directory.CreateDirectory(Path.Combine(dir.Path, "data"));
        DataFiles.WriteParquet(Path.Combine(dir.Path, "data", "train-00000-of-00001.parquet"), [row]);
        var ds = PreferenceDatasetLoader.Load(dir.Path);
        Assert.Single(ds.Examples);
        Assert.EndsWith(".parquet", Assert.Single(ds.Files));
        Assert.Contains(ds.Warnings, w => w.Contains("ignored 1 .json file(s)"));
    }

    [Theory]
    [InlineData("data/train-00000-of-00001.parquet", "train")]
    [InlineData("train.jsonl", "train")]
    [InlineData("test.jsonl", "test")]
    [InlineData("validation-00000-of-00003-abc.parquet", "validation")]
    [InlineData("dev.csv", "validation")]
    [InlineData("data/test/part-0.jsonl", "test")]
    [InlineData("train_prefs-00000-of-00001.parquet", "train_prefs")]
    [InlineData("truthy-dpo.parquet", "train")]
    public void SplitNamesFromPaths(string relative, string split) =>
        Assert.Equal(split, PreferenceDatasetLoader.SplitOf(relative));

    [Fact]
    public void JsonLinesInsideJsonFileIsAccepted()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "pairs.json");
        File.WriteAllText(path, "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"d\", \"chosen\": \"e\", \"rejected\": \"f\"}\n");
        Assert.Equal(["a", "d"], PreferenceDatasetLoader.Load(path).Examples.Select(e => e.Prompt));
    }

    [Fact]
    public void CsvMultilineQuotedFieldsAndLineNumbers()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "pairs.csv");
        File.WriteAllText(path, "prompt,chosen,rejected\n\"line1\nline2\",\"say \"\"yes\"\"\",no\nq,a,\n");
        var ex = Assert.Throws<DpoSharpException>(() => PreferenceDatasetLoader.Load(path));
        Assert.Contains("row 1 (line 4)", ex.Message); // the multi-line first row spans lines 2-3
        Assert.Contains("'rejected' is empty", ex.Message);

        File.WriteAllText(path, "prompt,chosen,rejected\n\"line1\nline2\",\"say \"\"yes\"\"\",no\n");
        var e = Assert.Single(PreferenceDatasetLoader.Load(path).Examples);
        Assert.Equal("line1\nline2", e.Prompt);
        Assert.Equal("say \"yes\"", e.Chosen);
    }

    [Fact]
    public void CsvCellsThatLookLikeListsStayTextOutsideIdColumns()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "pairs.csv");
        File.WriteAllText(path, "prompt,chosen,rejected\n\"[1, 2, 3]\",\"[{\"\"a\"\": 1}]\",no\n");
        var e = Assert.Single(PreferenceDatasetLoader.Load(path).Examples);
        Assert.Equal(PreferenceFormat.Standard, e.Format);
        Assert.Equal("[1, 2, 3]", e.Prompt);
        Assert.Equal("[{\"a\": 1}]", e.Chosen);
    }

    [Fact]
    public void IdenticalChosenAndRejectedIsCountedNotAnError()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "pairs.jsonl");
        File.WriteAllLines(path,
        [
            """{"prompt": "p", "chosen": "same", "rejected": "same"}""",
            """{"prompt": "p", "chosen": "a", "rejected": "b"}""",
            """{"prompt": "q", "chosen": "x", "rejected": "x"}""",
        ]);
        var ds = PreferenceDatasetLoader.Load(path);
        Assert.Equal(3, ds.Examples.Count);
        Assert.Equal(2, ds.IdenticalCount);
        var w = Assert.Single(ds.Warnings);
        Assert.Contains("2 pair(s) have identical chosen and rejected", w);
        Assert.Contains("row 0", w);
        Assert.Contains("row 2", w);
    }

    /// <summary>One line per example: S|system|prompt|chosen|rejected|how, C|prompt msgs|chosen msgs|rejected msgs|how, T|ids|ids|ids.</summary>
    public static string Describe(PreferenceExample e)
    {
        static string M(IReadOnlyList<DpoSharp.Tokenization.ChatMessage> m) => string.Join(";", m.Select(x => x.Role + ":" + x.Content));
        var how = e.PromptExtracted ? "extracted" : "explicit";
        return e.Format switch
        {
            PreferenceFormat.Standard => $"S|{e.System ?? "<none>"}|{e.Prompt}|{e.Chosen}|{e.Rejected}|{how}",
            PreferenceFormat.Conversational => $"C|{M(e.PromptMessages!)}|{M(e.ChosenMessages!)}|{M(e.RejectedMessages!)}|{how}",
            _ => $"T|{string.Join(",", e.PromptIds!)}|{string.Join(",", e.ChosenIds!)}|{string.Join(",", e.RejectedIds!)}",
        };
    }
}
