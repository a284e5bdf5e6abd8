using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using DpoSharp.Cli.Options;
using DpoSharp.Data;
using DpoSharp.IO;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Tokenization;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Reliability;

/// <summary>
/// Every reader of a file a user hands to dposharp, fed hand-made hostile files and seeded mutations of a valid file
/// (<see cref="FileMutator"/>): each case must end in success or a <see cref="DpoSharpException"/> whose message names
/// the file — never another exception type, a hang, or a managed allocation far beyond the file's size.
/// </summary>
public partial class ReaderFuzzTests
{
    /// <summary>Fixed seed: a failing case is reproduced by its reader and case number. <c>DPOSHARP_FUZZ_SCALE=N</c>
    /// runs N times the per-reader case budget (a longer local fuzz; CI runs the default).</summary>
    private const int Seed = 20261130;

    /// <summary>Longest a single case may take before it counts as a hang.</summary>
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Managed bytes a case may allocate beyond 64 × the file size (an allocation sized by a declared length, not the file, exceeds it).</summary>
    private const long AllocationSlack = 64L << 20;

    /// <summary>A reader under test: writes a valid seed (returns the file to mutate) and reads the folder.</summary>
    /// <param name="WorkBudgetBytes">Managed bytes a case may allocate in all (not at once) when the reader's work is
    /// bounded by a step budget rather than by the file (a chat template's render); null: sized by the file.</param>
    internal sealed record Reader(string Name, MutationKind Kind, int Cases, Func<string, string> WriteSeed, Action<string> Read, Func<string, IEnumerable<(string Name, byte[] Content)>>? Hostile = null, long? WorkBudgetBytes = null);

    private static readonly Reader[] All =
    [
        new("tokenizer.json", MutationKind.Json, 800, WriteTokenizerSeed, ReadTokenizer, dir => HostileJson.Concat(HostileTokenizers(dir))),
        new("tokenizer_config.json", MutationKind.Json, 600, dir => { WriteTokenizerSeed(dir); return Path.Combine(dir, "tokenizer_config.json"); }, ReadTokenizer, _ => HostileJson),
        new("special_tokens_map.json", MutationKind.Json, 300, dir => { WriteTokenizerSeed(dir); return Path.Combine(dir, "special_tokens_map.json"); }, ReadTokenizer, _ => HostileJson),
        new("config.json", MutationKind.Json, 600, WriteConfigSeed, dir => ModelConfig.Load(dir), _ => HostileJson),
        new("model.safetensors", MutationKind.SafeTensors, 600, WriteSafeTensorsSeed, ReadSafeTensors),
        new("model.safetensors.index.json", MutationKind.Json, 400, WriteShardedSeed, ReadCheckpoint, _ => HostileJson),
        new("adapter_config.json", MutationKind.Json, 400, WriteAdapterConfigSeed, dir => PeftAdapter.ReadConfig(dir), _ => HostileJson),
        new("train.jsonl", MutationKind.Text, 400, dir => WriteDataSeed(dir, "jsonl"), ReadPreferenceData),
        new("train.json", MutationKind.Json, 400, dir => WriteDataSeed(dir, "json-array"), ReadPreferenceData, _ => HostileJson),
        new("train.csv", MutationKind.Text, 400, dir => WriteDataSeed(dir, "csv"), ReadPreferenceData),
        new("train.parquet", MutationKind.Binary, 300, dir => WriteDataSeed(dir, "parquet"), ReadPreferenceData),
        new("sft.jsonl", MutationKind.Text, 300, WriteSftSeed, dir => SftDataset.Load(Path.Combine(dir, "sft.jsonl"))),
        new("run.yaml", MutationKind.Text, 400, dir => WriteRunConfig(dir, "run.yaml"), dir => OptionBinder.LoadFile<DpoOptions>(Path.Combine(dir, "run.yaml"))),
        new("run.json", MutationKind.Json, 400, dir => WriteRunConfig(dir, "run.json"), dir => OptionBinder.LoadFile<DpoOptions>(Path.Combine(dir, "run.json")), _ => HostileJson),
        new("trainer_state.json", MutationKind.Json, 500, WriteTrainerStateSeed, dir => Checkpointer.ReadState(dir), _ => HostileJson),
        new("vocab.json", MutationKind.Json, 300, dir => WriteGpt2FilesSeed(dir, "vocab.json"), ReadTokenizer, dir => HostileJson.Concat(HostileVocab(dir))),
        new("merges.txt", MutationKind.Text, 300, dir => WriteGpt2FilesSeed(dir, "merges.txt"), ReadTokenizer, _ => HostileMerges),
        new("tokenizer.model", MutationKind.Binary, 500, WriteSentencePieceSeed, ReadTokenizer, HostileSentencePiece),
        new("chat_template.jinja", MutationKind.Text, 500, WriteChatTemplateSeed, ReadTokenizer, _ => HostileTemplates, WorkBudgetBytes: 1L << 29),
        new("dataset folder shard", MutationKind.Text, 300, WriteDatasetFolderSeed, ReadDatasetFolder),
        new("dataset folder parquet shard", MutationKind.Binary, 200, dir => WriteDatasetFolderSeed(dir, parquet: true), ReadDatasetFolder),
        new("adapter_model.safetensors", MutationKind.SafeTensors, 200, WriteAdapterSeed, ReadAdapter, HostileAdapterWeights),
        new("adapter_config.json vs weights", MutationKind.Json, 150, dir => Path.Combine(Path.GetDirectoryName(WriteAdapterSeed(dir))!, PeftAdapter.ConfigFileName), ReadAdapter, HostileAdapterConfigs),
    ];

    /// <summary>Reader names for the theory.</summary>
    public static TheoryData<string> Readers => new(All.Select(r => r.Name));

    /// <summary>Hand-made hostile contents for any JSON file (besides the mutations).</summary>
    internal static IEnumerable<(string, byte[])> HostileJson =>
        new[]
        {
            ("empty", string.Empty),
            ("null", "null"),
            ("number", "42"),
            ("string", "\"x\""),
            ("array", "[1, 2, 3]"),
            ("unclosed", "{\"a\": [1, 2"),
            ("deep nesting", new string('[', 100_000)),
            ("huge number", "{\"vocab_size\": 1e999, \"hidden_size\": 99999999999999999999}"),
            ("NaN", "{\"x\": NaN}"),
            ("bad utf8", "{\"a\": \"\u00ff\u00fe\"}"),
        }.Select(x => (x.Item1, Encoding.UTF8.GetBytes(x.Item2)))
        .Append(("invalid utf8 bytes", [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D]))
        .Append(("BOM only", [0xEF, 0xBB, 0xBF]));

    /// <summary>tokenizer.json edits that once were internal errors or would size an allocation by the file:
    /// merges holding numbers, huge and negative token ids, a vocabulary that is an array.</summary>
    private static IEnumerable<(string, byte[])> HostileTokenizers(string dir)
    {
        var seed = File.ReadAllText(Path.Combine(dir, "tokenizer.json"));
        (string, byte[]) Edit(string name, Action<JsonObject> edit)
        {
            var o = JsonNode.Parse(seed)!.AsObject();
            edit(o);
            return (name, Encoding.UTF8.GetBytes(o.ToJsonString()));
        }

        yield return Edit("merges holding numbers", o => o["model"]!["merges"] = new JsonArray(1, 2, 3));
        yield return Edit("merge pair holding a number", o => o["model"]!["merges"] = new JsonArray(new JsonArray("h", 5)));
        yield return Edit("added token id int.MaxValue", o => o["added_tokens"]![0]!["id"] = int.MaxValue);
        yield return Edit("added token id -1", o => o["added_tokens"]![0]!["id"] = -1);
        yield return Edit("vocab id 2e9", o => o["model"]!["vocab"]!["he"] = 2_000_000_000);
        yield return Edit("vocab as an array", o => o["model"]!["vocab"] = new JsonArray("a", "b"));
        yield return Edit("added token content a number", o => o["added_tokens"]![0]!["content"] = 7);
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void HostileAndMutatedFilesEndInSuccessOrANamedError(string readerName) => Fuzz(All.Single(r => r.Name == readerName));

    /// <summary>Runs <paramref name="reader"/> on its seed, its hostile files and its seeded mutations; every case must
    /// succeed or throw a <see cref="DpoSharpException"/> naming the mutated file (or the folder it is in).</summary>
    internal static void Fuzz(Reader reader)
    {
        var readerName = reader.Name;
        using var dir = TestPaths.CreateTempDir();
        var target = reader.WriteSeed(dir.Path);
        var seed = File.ReadAllBytes(target);
        var fileName = Path.GetFileName(target);

        // The seed itself reads.
        reader.Read(dir.Path);

        var failures = new List<string>();
        var cases = new List<(string Label, byte[] Content)>();
        foreach (var (name, content) in reader.Hostile?.Invoke(dir.Path) ?? [])
        {
            cases.Add(("hostile: " + name, content));
        }

        var rng = new Random(Seed ^ StableHash(readerName));
        int budget = reader.Cases * (int.TryParse(Environment.GetEnvironmentVariable("DPOSHARP_FUZZ_SCALE"), out var scale) && scale > 0 ? scale : 1);
        for (int i = 0; i < budget; i++)
        {
            var mutated = FileMutator.Mutate(seed, reader.Kind, rng, out var description);
            cases.Add(($"case {i}: {description}", mutated));
        }

        foreach (var (label, content) in cases)
        {
            File.WriteAllBytes(target, content);
            var outcome = RunCase(() => reader.Read(dir.Path), (64L * content.Length) + (reader.WorkBudgetBytes ?? AllocationSlack));
            switch (outcome)
            {
                case null:
                    break;
                case DpoSharp.Tokenization.ChatTemplates.ChatTemplateRaisedException:
                    break; // the template's own raise_exception: its message is the template's, the data layer names the row
                case DpoSharpException e when e.Message.Contains(fileName, StringComparison.Ordinal) || e.Message.Contains(target, StringComparison.Ordinal):
                    break;
                case DpoSharpException e:
                    failures.Add($"{label}: the message does not name {fileName}: {e.Message}");
                    break;
                default:
                    failures.Add($"{label}: {outcome.GetType().Name}: {outcome.Message} {outcome.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("DpoSharp.", StringComparison.Ordinal) && !l.Contains("Tests", StringComparison.Ordinal))?.Trim()}");
                    break;
            }

            if (outcome is TimeoutException)
            {
                break; // a hung reader keeps its thread: stop this reader
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases of {readerName} failed:\n" + string.Join("\n", failures.Take(15)));
    }

    /// <summary>The known bug: <c>model.merges</c> holding numbers was an InvalidOperationException (exit 1, "please
    /// report it"); now exit 2 naming the file and the JSON path. Also through the CLI: a config file of the wrong
    /// type and a CSV dataset without a header are exit 2 naming the file.</summary>
    [Fact]
    public void HostileFilesThroughTheCliExitWith2NamingTheFile()
    {
        using var dir = TestPaths.CreateTempDir();
        var tokPath = WriteTokenizerSeed(dir.Path);
        var tok = JsonNode.Parse(File.ReadAllText(tokPath))!.AsObject();
        tok["model"]!["merges"] = new JsonArray(1, 2, 3);
        File.WriteAllText(tokPath, tok.ToJsonString());
        var (rc, _, err) = CliRunner.Run("tokenize", "--model", dir.Path, "--text", "hello");
        Assert.Equal(2, rc);
        Assert.Contains(tokPath + ": $.model.merges[0] is neither a string", err);

        var config = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(config, "beta: [1, 2\n");
        (rc, _, err) = CliRunner.Run("train", "--config", config);
        Assert.Equal(2, rc);
        Assert.Contains(config, err);

        var csv = Path.Combine(dir.Path, "pairs.csv");
        File.WriteAllText(csv, "\"prompt,chosen,rejected\n");
        (rc, _, err) = CliRunner.Run("data", "--dataset", csv, "--output", Path.Combine(dir.Path, "out.jsonl"));
        Assert.Equal(2, rc);
        Assert.Contains(csv, err);
    }

    /// <summary>Runs <paramref name="read"/> on a thread of its own: null on success, else what it threw, a
    /// <see cref="TimeoutException"/> for a hang or an <see cref="InsufficientMemoryException"/> for an allocation beyond <paramref name="maxBytes"/>.</summary>
    internal static Exception? RunCase(Action read, long maxBytes)
    {
        Exception? thrown = null;
        long allocated = 0;
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                read();
            }
            catch (Exception e)
            {
                thrown = e;
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, maxStackSize: 4 << 20)
        { IsBackground = true };
        thread.Start();
        if (!thread.Join(CaseTimeout))
        {
            return new TimeoutException($"no result after {CaseTimeout.TotalSeconds} s");
        }

        if (allocated > maxBytes)
        {
            return new InsufficientMemoryException($"allocated {allocated:N0} managed bytes (limit {maxBytes:N0})");
        }

        return thrown;
    }

    private static int StableHash(string s) => s.Aggregate(17, (h, c) => unchecked((h * 31) + c));

    /// <summary>A byte-level BPE tokenizer with merges, a chat template, added tokens and a special tokens map.</summary>
    internal static string WriteTokenizerSeed(string dir)
    {
        TinyCheckpoints.WriteTokenizer(dir);
        var path = Path.Combine(dir, "tokenizer.json");
        var tok = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var model = tok["model"]!.AsObject();
        model["vocab"]!["he"] = 257;
        model["vocab"]!["ll"] = 258;
        model["vocab"]!["llo"] = 259;
        model["merges"] = new JsonArray("h e", "l l", new JsonArray("ll", "o"));
        File.WriteAllText(path, tok.ToJsonString());

        var configPath = Path.Combine(dir, "tokenizer_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["chat_template"] = "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] | trim }}{% if not loop.last %}\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
        config["added_tokens_decoder"] = new JsonObject
        {
            ["256"] = new JsonObject { ["content"] = "<|endoftext|>", ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true },
        };
        config["pad_token"] = new JsonObject { ["content"] = "<|endoftext|>", ["special"] = true };
        File.WriteAllText(configPath, config.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), new JsonObject
        {
            ["bos_token"] = "<|endoftext|>",
            ["eos_token"] = new JsonObject { ["content"] = "<|endoftext|>", ["lstrip"] = false },
            ["additional_special_tokens"] = new JsonArray("<|endoftext|>"),
        }.ToJsonString());
        return path;
    }

    private static void ReadTokenizer(string dir)
    {
        var tok = HfTokenizer.Load(dir);
        var ids = tok.Encode("hello world<|endoftext|>", addSpecialTokens: true);
        tok.Decode(ids);
        if (tok.ChatTemplate is not null)
        {
            tok.ApplyChatTemplate([new ChatMessage("user", "hi"), new ChatMessage("assistant", "hello")], addGenerationPrompt: true);
        }
    }

    private static string WriteConfigSeed(string dir)
    {
        var path = Path.Combine(dir, "config.json");
        var c = TinyCheckpoints.Config("llama");
        c["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 2.0 };
        File.WriteAllText(path, c.ToJsonString());
        return path;
    }

    private static string WriteSafeTensorsSeed(string dir)
    {
        var path = Path.Combine(dir, "model.safetensors");
        using var a = arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        using var b = arange(4, dtype: ScalarType.Int64);
        SafeTensorsWriter.Write(path, [("a", a), ("b", b)], new Dictionary<string, string> { ["format"] = "pt" });
        return path;
    }

    private static void ReadSafeTensors(string dir)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors"));
        foreach (var t in file.ReadAll().Values)
        {
            t.Dispose();
        }
    }

    private static string WriteShardedSeed(string dir)
    {
        using var a = arange(64, dtype: ScalarType.Float32);
        using var b = arange(64, dtype: ScalarType.Float32);
        using var c = arange(8, dtype: ScalarType.Float32);
        SafeTensorsCheckpoint.Write(dir, [("a", a), ("b", b), ("c", c)], maxShardBytes: 300);
        return Path.Combine(dir, "model.safetensors.index.json");
    }

    private static void ReadCheckpoint(string dir)
    {
        using var ckpt = SafeTensorsCheckpoint.Open(dir);
        foreach (var name in ckpt.Names)
        {
            using var t = ckpt.Read(name);
        }
    }

    private static string WriteAdapterConfigSeed(string dir)
    {
        var path = Path.Combine(dir, PeftAdapter.ConfigFileName);
        File.WriteAllText(path, new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["r"] = 4,
            ["lora_alpha"] = 8,
            ["lora_dropout"] = 0.05,
            ["target_modules"] = new JsonArray("q_proj", "v_proj"),
            ["bias"] = "none",
            ["base_model_name_or_path"] = "tiny/llama",
            ["fan_in_fan_out"] = false,
            ["use_dora"] = false,
            ["use_rslora"] = false,
            ["modules_to_save"] = null,
        }.ToJsonString());
        return path;
    }

    private static string WriteDataSeed(string dir, string kind)
    {
        var rows = new List<JsonObject>
        {
            DataFiles.Obj("{\"prompt\": \"What is 2+2?\", \"chosen\": \"4\", \"rejected\": \"5\"}"),
            DataFiles.Obj("{\"prompt\": \"Capital of France?\", \"chosen\": \"Paris\", \"rejected\": \"Lyon\"}"),
            DataFiles.Obj("{\"prompt\": \"Say \\\"hi\\\", please\", \"chosen\": \"hi\", \"rejected\": \"no, I won't\"}"),
        };
        return DataFiles.Write(dir, "train", kind, rows);
    }

    private static void ReadPreferenceData(string dir) => PreferenceDatasetLoader.Load(Directory.EnumerateFiles(dir).Single());

    private static string WriteSftSeed(string dir)
    {
        var path = Path.Combine(dir, "sft.jsonl");
        File.WriteAllLines(path,
        [
            "{\"prompt\": \"What is 2+2?\", \"completion\": \"4\"}",
            "{\"prompt\": \"Say \\\"hi\\\"\", \"completion\": \"hi\"}",
        ]);
        return path;
    }

    private static string WriteRunConfig(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        if (name.EndsWith(".json", StringComparison.Ordinal))
        {
            File.WriteAllText(path, "{\"beta\": 0.1, \"learning_rate\": 5e-7, \"loss_type\": [\"sigmoid\", \"sft\"], \"loss_weights\": [1, 0.5], \"max_steps\": 3, \"lora_target_modules\": [\"q_proj\"], \"report_to\": \"none\"}");
        }
        else
        {
            File.WriteAllText(path, "# a run\nbeta: 0.1\nlearning_rate: 5.0e-7\nloss_type: [sigmoid, sft]\nloss_weights:\n  - 1\n  - 0.5\nmax_steps: 3\nlora_target_modules: q_proj,v_proj\nreport_to: none\n");
        }

        return path;
    }

    private static string WriteTrainerStateSeed(string dir)
    {
        var state = new TrainerState
        {
            GlobalStep = 4,
            Epoch = 0.5,
            TotalSteps = 8,
            NumTokens = 1234,
            DataEpoch = 0,
            MicroBatch = 8,
            Seed = 42,
            PerDeviceTrainBatchSize = 2,
            GradientAccumulationSteps = 2,
            NumTrainPairs = 32,
            WorldSize = 1,
            LossState = { ["running_mean"] = 0.25 },
        };
        state.LogHistory.Add(new TrainerLogEntry(2, new Dictionary<string, double> { ["loss"] = 0.69, ["rewards/margins"] = double.NaN }));
        var path = Path.Combine(dir, Checkpointer.TrainerStateFile);
        Checkpointer.WriteTrainerState(path, state);
        return path;
    }
}
