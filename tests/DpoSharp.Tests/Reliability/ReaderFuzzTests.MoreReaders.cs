using System.Text;
using System.Text.Json.Nodes;
using DpoSharp.Data;
using DpoSharp.IO;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Tests.Tokenization;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Reliability;

/// <content>Seeds and hostile corpora of the readers added for issue 14's second round: vocab.json + merges.txt,
/// tokenizer.model, a standalone chat_template.jinja, dataset folders, and PEFT adapters against their base.</content>
public partial class ReaderFuzzTests
{
    private const string ChatTemplateSeed =
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ '<|user|>' + m['content'] | trim }}{% else %}{{ '<|assistant|>' ~ m.content }}{% endif %}" +
        "{% if not loop.last %}\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

    /// <summary>A GPT-2 style folder without tokenizer.json: vocab.json (the byte alphabet plus merged tokens), merges.txt.</summary>
    private static string WriteGpt2FilesSeed(string dir, string which)
    {
        var vocab = new JsonObject();
        var chars = ByteLevelAlphabet.Chars();
        for (int b = 0; b < 256; b++)
        {
            vocab[chars[b]] = b;
        }

        vocab["he"] = 256;
        vocab["ll"] = 257;
        vocab["llo"] = 258;
        vocab["<|endoftext|>"] = 259;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), vocab.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\nh e\nl l\nll o\n");
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"eos_token": "<|endoftext|>", "add_prefix_space": false}""");
        return Path.Combine(dir, which);
    }

    private static IEnumerable<(string, byte[])> HostileVocab(string dir)
    {
        var seed = File.ReadAllText(Path.Combine(dir, "vocab.json"));
        (string, byte[]) Edit(string name, Action<JsonObject> edit)
        {
            var o = JsonNode.Parse(seed)!.AsObject();
            edit(o);
            return (name, Encoding.UTF8.GetBytes(o.ToJsonString()));
        }

        yield return Edit("id 2e9", o => o["he"] = 2_000_000_000);
        yield return Edit("id -1", o => o["he"] = -1);
        yield return Edit("id a string", o => o["he"] = "256");
        yield return Edit("id 1.5", o => o["he"] = 1.5);
        yield return Edit("id an object", o => o["he"] = new JsonObject());
        yield return Edit("byte token missing", o => o.Remove("h"));
        yield return Edit("two tokens with one id", o => o["ll"] = 256);
        yield return ("array", "[\"a\", \"b\"]"u8.ToArray());
    }

    private static IEnumerable<(string, byte[])> HostileMerges =>
        new[]
        {
            ("empty", string.Empty),
            ("version line only", "#version: 0.2\n"),
            ("no space", "#version: 0.2\nhello\n"),
            ("a lone space", "#version: 0.2\n \n"),
            ("leading space", "#version: 0.2\n he\n"),
            ("tokens not in the vocabulary", "#version: 0.2\nq z\nqz zz\n"),
            ("merge result not in the vocabulary", "#version: 0.2\nh l\n"),
            ("three parts", "h e l\n"),
            ("NUL bytes", "h\0 e\0\n"),
            ("CRLF", "#version: 0.2\r\nh e\r\nl l\r\n"),
            ("one merge repeated", string.Concat(Enumerable.Repeat("h e\n", 10_000))),
            ("a 1 MB line", "h " + new string('e', 1 << 20) + "\n"),
        }.Select(x => (x.Item1, Encoding.UTF8.GetBytes(x.Item2)))
        .Append(("invalid UTF-8", [0x68, 0x20, 0xC3, 0x28, 0x0A]));

    /// <summary>A SentencePiece BPE model (protobuf) with byte pieces, and a tokenizer_config.json.</summary>
    private static string WriteSentencePieceSeed(string dir)
    {
        string[] pieces = ["<unk>", "<s>", "</s>", "<0x41>", "▁", "h", "e", "l", "o", "▁h", "he", "ll", "llo", "▁he"];
        var path = Path.Combine(dir, "tokenizer.model");
        File.WriteAllBytes(path, SentencePieceModelWriter.Write(pieces));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true}""");
        return path;
    }

    /// <summary>Protobuf built by hand: lengths beyond the file, endless varints, wrong wire types, a unigram model,
    /// special ids out of range, invalid UTF-8 pieces.</summary>
    private static IEnumerable<(string, byte[])> HostileSentencePiece(string dir)
    {
        var seed = File.ReadAllBytes(Path.Combine(dir, "tokenizer.model"));
        static byte[] Varint(ulong v)
        {
            var b = new List<byte>();
            while (v >= 0x80)
            {
                b.Add((byte)(v | 0x80));
                v >>= 7;
            }

            b.Add((byte)v);
            return [.. b];
        }

        static byte[] Field(int field, int wire, params byte[][] parts) => [.. Varint((ulong)((field << 3) | wire)), .. parts.SelectMany(p => p)];
        static byte[] Message(int field, byte[] body) => Field(field, 2, Varint((ulong)body.Length), body);
        static byte[] Trainer(params byte[][] fields) => Message(2, [.. fields.SelectMany(f => f)]);
        static byte[] Piece(byte[] text, int type) => Message(1, [.. Message(1, text), .. Field(2, 5, BitConverter.GetBytes(-1f)), .. Field(3, 0, Varint((ulong)type))]);

        yield return ("empty", []);
        yield return ("one byte", [0x0A]);
        yield return ("endless varint", [.. Enumerable.Repeat((byte)0xFF, 20)]);
        yield return ("length 2^31", [0x0A, .. Varint(1UL << 31)]);
        yield return ("length 2^63", [0x0A, .. Varint(1UL << 63)]);
        yield return ("length just past the end", [0x0A, 0x05, 0x0A, 0x01]);
        yield return ("group wire type", [0x0B, 0x0C]);
        yield return ("fixed64 past the end", [0x09, 1, 2]);
        yield return ("no pieces", Trainer(Field(3, 0, Varint(2))));
        yield return ("unigram model type", [.. seed, .. Trainer(Field(3, 0, Varint(1)))]);
        yield return ("char model type", [.. seed, .. Trainer(Field(3, 0, Varint(4)))]);
        yield return ("model type 2^40", [.. seed, .. Trainer(Field(3, 0, Varint(1UL << 40)))]);
        yield return ("unk id 2^40", [.. seed, .. Trainer(Field(40, 0, Varint(1UL << 40)))]);
        yield return ("bos id -1 (10-byte varint)", [.. seed, .. Trainer(Field(41, 0, Varint(ulong.MaxValue)))]);
        yield return ("eos id past the pieces", [.. seed, .. Trainer(Field(42, 0, Varint(1000)))]);
        yield return ("piece of invalid UTF-8", [.. seed, .. Piece([0xC3, 0x28], 1)]);
        yield return ("piece type 99", [.. seed, .. Piece("x"u8.ToArray(), 99)]);
        yield return ("empty piece", [.. seed, .. Piece([], 1)]);
        yield return ("byte piece that is not a byte", [.. seed, .. Piece("<0xZZ>"u8.ToArray(), 6)]);
        yield return ("duplicate pieces", [.. seed, .. Piece("he"u8.ToArray(), 1), .. Piece("he"u8.ToArray(), 1)]);
        yield return ("score NaN", [.. seed, .. Message(1, [.. Message(1, "qq"u8.ToArray()), .. Field(2, 5, BitConverter.GetBytes(float.NaN))])]);
        yield return ("10k tiny pieces", [.. seed, .. Enumerable.Range(0, 10_000).SelectMany(i => Piece(Encoding.UTF8.GetBytes("p" + i), 1))]);
    }

    /// <summary>The tokenizer seed with its chat template in chat_template.jinja (not in tokenizer_config.json).</summary>
    private static string WriteChatTemplateSeed(string dir)
    {
        WriteTokenizerSeed(dir);
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config.Remove("chat_template");
        File.WriteAllText(configPath, config.ToJsonString());
        var path = Path.Combine(dir, "chat_template.jinja");
        File.WriteAllText(path, ChatTemplateSeed);
        return path;
    }

    /// <summary>Templates with hostile syntax: unclosed tags, deep nesting, huge repetition counts, runaway loops and
    /// recursion, texts that double until they exhaust memory. None may hang, overflow the stack or allocate unboundedly.</summary>
    internal static IEnumerable<(string, byte[])> HostileTemplates =>
        new[]
        {
            ("empty", string.Empty),
            ("unclosed output", "{{ messages[0]['content'] "),
            ("unclosed block", "{% for m in messages %}{{ m.content }}"),
            ("unclosed if", "{% if add_generation_prompt %}x"),
            ("unclosed comment", "{# a comment"),
            ("unclosed string", "{{ 'abc }}"),
            ("stray end tag", "{% endfor %}"),
            ("unknown tag", "{% include 'x.jinja' %}"),
            ("10k nested ifs", string.Concat(Enumerable.Repeat("{% if true %}", 10_000)) + "x" + string.Concat(Enumerable.Repeat("{% endif %}", 10_000))),
            ("10k nested fors", string.Concat(Enumerable.Repeat("{% for m in messages %}", 10_000)) + string.Concat(Enumerable.Repeat("{% endfor %}", 10_000))),
            ("100k parentheses", "{{ " + new string('(', 100_000) + "1" + new string(')', 100_000) + " }}"),
            ("100k nots", "{{ " + string.Concat(Enumerable.Repeat("not ", 100_000)) + "true }}"),
            ("100k unary minus", "{{ " + new string('-', 100_000) + "1 }}"),
            ("100k additions", "{{ 1" + string.Concat(Enumerable.Repeat(" + 1", 100_000)) + " }}"),
            ("100k attribute chain", "{{ messages" + string.Concat(Enumerable.Repeat(".content", 100_000)) + " }}"),
            ("100k filters", "{{ 'x'" + string.Concat(Enumerable.Repeat("|trim", 100_000)) + " }}"),
            ("100k nested lists", "{{ " + new string('[', 100_000) + new string(']', 100_000) + " }}"),
            ("string times 10**12", "{{ 'x' * 10**12 }}"),
            ("string times 10**8", "{{ 'x' * 100000000 }}"),
            ("list times 10**9", "{{ [1, 2] * 1000000000 }}"),
            ("range(10**12)", "{% for i in range(10**12) %}{% endfor %}"),
            ("range(-10**12, 0)", "{% for i in range(-1000000000000, 0) %}{% endfor %}"),
            ("nested ranges 10^5 x 10^5", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
            ("nested loops over a repeated list", "{% for i in [0] * 900000 %}{% for j in [0] * 900000 %}{% endfor %}{% endfor %}"),
            ("recursive macro", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"),
            ("mutually recursive macros", "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}"),
            ("doubling text", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"),
            ("doubling list", "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}"),
            ("replace into every gap", "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s.replace('', 'xy') %}{% endfor %}{{ ns.s }}"),
            ("replace with a count of 10**18", "{{ 'a'.replace('', 'x', 1000000000000000000) }}"),
            ("replace growing", "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s.replace('a', 'aaaa') %}{% endfor %}{{ ns.s|length }}"),
            ("join of huge strings", "{{ (['x' * 4000000] * 1000)|join }}"),
            ("join method of huge strings", "{{ ''.join(['x' * 4000000] * 1000) }}"),
            ("indent 10**9", "{{ 'a\nb'|indent(1000000000) }}"),
            ("pow 10**10**10", "{{ 10 ** 10 ** 10 }}"),
            ("integer overflow", "{{ 9223372036854775807 + 1 }}{{ -9223372036854775807 - 2 }}{{ 9223372036854775807 * 2 }}"),
            ("floor division overflow", "{{ (-9223372036854775807 - 1) // -1 }}"),
            ("modulo by zero", "{{ 1 % 0 }}"),
            ("division by zero", "{{ 1 / 0 }}"),
            ("index 10**20", "{{ messages[100000000000000000000] }}"),
            ("slice with step 0", "{{ messages[::0] }}"),
            ("raise_exception", "{{ raise_exception('the template refuses') }}"),
            ("undefined function", "{{ no_such_function() }}"),
            ("tojson of deep namespace", "{% set ns = namespace(x=1) %}{{ ns|tojson(indent=1000000000) }}"),
            ("strftime of a long format", "{{ strftime_now('%Y' * 100000) }}"),
        }.Select(x => (x.Item1, Encoding.UTF8.GetBytes(x.Item2)))
        .Append(("invalid UTF-8", [0x7B, 0x7B, 0x20, 0x27, 0xC3, 0x28, 0x27, 0x20, 0x7D, 0x7D]))
        .Append(("2 MB of text", Encoding.UTF8.GetBytes(new string('x', 2 << 20))));

    /// <summary>A Hugging Face dataset folder as downloaded: two train shards, a test shard and dataset_info.json;
    /// the second train shard is the file mutated.</summary>
    private static string WriteDatasetFolderSeed(string dir) => WriteDatasetFolderSeed(dir, parquet: false);

    private static string WriteDatasetFolderSeed(string dir, bool parquet)
    {
        var data = Directory.CreateDirectory(Path.Combine(dir, "ds", "data")).FullName;
        var kind = parquet ? "parquet" : "jsonl";
        JsonObject Row(int i) => DataFiles.Obj($"{{\"prompt\": \"Question {i}?\", \"chosen\": \"yes {i}\", \"rejected\": \"no {i}\"}}");
        DataFiles.Write(data, "train-00000-of-00002", kind, [Row(0), Row(1)]);
        var target = DataFiles.Write(data, "train-00001-of-00002", kind, [Row(2), Row(3), Row(4)]);
        DataFiles.Write(data, "test-00000-of-00001", kind, [Row(5)]);
        File.WriteAllText(Path.Combine(dir, "ds", "dataset_info.json"), """{"features": {"prompt": {"dtype": "string"}}}""");
        return target;
    }

    private static void ReadDatasetFolder(string dir)
    {
        var folder = Path.Combine(dir, "ds");
        PreferenceDatasetLoader.Load(folder);
        PreferenceDatasetLoader.Load(folder, new DatasetOptions { Split = "test" });
    }

    /// <summary>A tiny Llama base and a PEFT adapter on q_proj/v_proj (r 4); returns the adapter's weights file.</summary>
    private static string WriteAdapterSeed(string dir)
    {
        var (_, adapter) = TinyAdapters.Write(dir, "llama", new LoraOptions { TargetModules = ["q_proj", "v_proj"], R = 4, LoraAlpha = 8, BaseModelNameOrPath = "tiny/llama" });
        return Path.Combine(adapter, PeftAdapter.WeightsFileName);
    }

    private static void ReadAdapter(string dir)
    {
        using var model = ModelLoader.Load(Path.Combine(dir, "base"));
        PeftAdapter.Load(model, Path.Combine(dir, "adapter"));
    }

    /// <summary>Adapter weights that do not fit the base: wrong shapes, another rank, a missing lora_B, a layer the
    /// base does not have, NaN values, integer and 3-D tensors, no tensors at all.</summary>
    private static IEnumerable<(string, byte[])> HostileAdapterWeights(string dir)
    {
        var path = Path.Combine(dir, "adapter", PeftAdapter.WeightsFileName);
        var tensors = new List<(string Name, Tensor Tensor)>();
        using (var file = SafeTensorsFile.Open(path))
        {
            tensors.AddRange(file.ReadAll().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)));
        }

        var tmp = Path.Combine(dir, "hostile.safetensors");
        byte[] Write(IEnumerable<(string Name, Tensor Tensor)> edited)
        {
            SafeTensorsWriter.Write(tmp, [.. edited], new Dictionary<string, string> { ["format"] = "pt" });
            var bytes = File.ReadAllBytes(tmp);
            File.Delete(tmp);
            return bytes;
        }

        var a = tensors.First(t => t.Name.EndsWith("lora_A.weight", StringComparison.Ordinal));
        var b = tensors.First(t => t.Name.EndsWith("lora_B.weight", StringComparison.Ordinal));
        IEnumerable<(string, Tensor)> Replace(string name, Tensor t) => tensors.Select(x => x.Name == name ? (x.Name, t) : x);

        using var aT = a.Tensor.t().contiguous();
        using var aRank8 = zeros(8, a.Tensor.shape[1]);
        using var bRank8 = zeros(b.Tensor.shape[0], 8);
        using var aNaN = full_like(a.Tensor, double.NaN);
        using var aInt = zeros(a.Tensor.shape, dtype: ScalarType.Int64);
        using var a3d = zeros(1, a.Tensor.shape[0], a.Tensor.shape[1]);
        using var scalar = tensor(1.0f);
        yield return ("lora_A transposed", Write(Replace(a.Name, aT)));
        yield return ("lora_A and lora_B of rank 8 (config says 4)", Write(Replace(a.Name, aRank8).Select(x => x.Item1 == b.Name ? (x.Item1, bRank8) : x)));
        yield return ("lora_A of rank 8 only", Write(Replace(a.Name, aRank8)));
        yield return ("lora_B missing", Write(tensors.Where(t => t.Name != b.Name)));
        yield return ("only lora_A tensors", Write(tensors.Where(t => t.Name.Contains("lora_A", StringComparison.Ordinal))));
        yield return ("a layer the base does not have", Write(tensors.Select(t => (t.Name.Replace("layers.0.", "layers.99.", StringComparison.Ordinal), t.Tensor))));
        yield return ("a module that is not linear", Write(tensors.Select(t => (t.Name.Replace("q_proj", "rotary_emb", StringComparison.Ordinal), t.Tensor))));
        yield return ("a key that is not a LoRA weight", Write(tensors.Append(("base_model.model.lm_head.weight", scalar))));
        yield return ("NaN values", Write(Replace(a.Name, aNaN)));
        yield return ("int64 values", Write(Replace(a.Name, aInt)));
        yield return ("a 3-D lora_A", Write(Replace(a.Name, a3d)));
        yield return ("a scalar lora_A", Write(Replace(a.Name, scalar)));
        yield return ("no tensors", Write([]));
        foreach (var (_, t) in tensors)
        {
            t.Dispose();
        }
    }

    /// <summary>adapter_config.json edits that contradict the weights: another rank, targets the base lacks, and
    /// fields of the wrong type.</summary>
    private static IEnumerable<(string, byte[])> HostileAdapterConfigs(string dir)
    {
        var seed = File.ReadAllText(Path.Combine(dir, "adapter", PeftAdapter.ConfigFileName));
        (string, byte[]) Edit(string name, Action<JsonObject> edit)
        {
            var o = JsonNode.Parse(seed)!.AsObject();
            edit(o);
            return (name, Encoding.UTF8.GetBytes(o.ToJsonString()));
        }

        yield return Edit("r 8 (weights have 4)", o => o["r"] = 8);
        yield return Edit("r 0", o => o["r"] = 0);
        yield return Edit("r 2^31-1", o => o["r"] = int.MaxValue);
        yield return Edit("r a string", o => o["r"] = "4");
        yield return Edit("lora_alpha NaN-like string", o => o["lora_alpha"] = "NaN");
        yield return Edit("target_modules the base lacks", o => o["target_modules"] = new JsonArray("w_pack"));
        yield return Edit("target_modules a number", o => o["target_modules"] = 3);
        yield return Edit("target_modules holding null", o => o["target_modules"] = new JsonArray((JsonNode?)null));
        yield return Edit("peft_type a number", o => o["peft_type"] = 1);
        yield return Edit("bias 'all'", o => o["bias"] = "all");
        yield return Edit("use_dora true", o => o["use_dora"] = true);
        yield return Edit("rank_pattern set", o => o["rank_pattern"] = new JsonObject { ["q_proj"] = 8 });
        yield return Edit("modules_to_save set", o => o["modules_to_save"] = new JsonArray("lm_head"));
        foreach (var x in HostileJson)
        {
            yield return x;
        }
    }

    /// <summary>Dataset folder layouts that are not a downloaded Hugging Face dataset, or are damaged: empty, metadata
    /// only, datasets' save_to_disk Arrow files, shards of different shapes, an empty shard, a symlink loop, no train
    /// split. Each ends in success or a <see cref="DpoSharpException"/> naming the folder or a file in it; never a hang.</summary>
    [Fact]
    public void HostileDatasetFoldersEndInSuccessOrANamedError()
    {
        const string Row = "{\"prompt\": \"Q?\", \"chosen\": \"yes\", \"rejected\": \"no\"}";
        var layouts = new (string Name, Action<string> Build, string? Expected)[]
        {
            ("empty folder", _ => { }, "holds no data files"),
            ("metadata only", d => { File.WriteAllText(Path.Combine(d, "dataset_info.json"), "{}"); File.WriteAllText(Path.Combine(d, "state.json"), "{}"); }, "holds no data files"),
            ("save_to_disk", d => { File.WriteAllBytes(Path.Combine(d, "data-00000-of-00001.arrow"), [0xFF, 0xFF, 0xFF, 0xFF]); File.WriteAllText(Path.Combine(d, "state.json"), "{}"); }, "Arrow files"),
            ("save_to_disk with splits", d => { File.WriteAllText(Path.Combine(d, "dataset_dict.json"), "{\"splits\": [\"train\"]}"); Directory.CreateDirectory(Path.Combine(d, "train")); File.WriteAllBytes(Path.Combine(d, "train", "data-00000-of-00001.arrow"), [1, 2, 3]); }, "Arrow files"),
            ("shards of different shapes", d => { File.WriteAllText(Path.Combine(d, "train-00000-of-00002.jsonl"), Row + "\n"); File.WriteAllText(Path.Combine(d, "train-00001-of-00002.jsonl"), "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"); }, null),
            ("an empty shard", d => { File.WriteAllText(Path.Combine(d, "train-00000-of-00002.jsonl"), Row + "\n"); File.WriteAllText(Path.Combine(d, "train-00001-of-00002.jsonl"), string.Empty); }, null),
            ("a shard that is a folder", d => { File.WriteAllText(Path.Combine(d, "train-00000-of-00002.jsonl"), Row + "\n"); Directory.CreateDirectory(Path.Combine(d, "train-00001-of-00002.jsonl")); }, null),
            ("data only in a hidden folder", d => { Directory.CreateDirectory(Path.Combine(d, ".cache")); File.WriteAllText(Path.Combine(d, ".cache", "train.jsonl"), Row + "\n"); }, "holds no data files"),
            ("a symlink loop", d => { File.WriteAllText(Path.Combine(d, "train.jsonl"), Row + "\n"); Directory.CreateDirectory(Path.Combine(d, "sub")); Directory.CreateSymbolicLink(Path.Combine(d, "sub", "loop"), d); }, null),
            ("two splits, none train", d => { File.WriteAllText(Path.Combine(d, "test.jsonl"), Row + "\n"); File.WriteAllText(Path.Combine(d, "validation.jsonl"), Row + "\n"); }, "pass --split"),
            ("a split with formats mixed", d => { File.WriteAllText(Path.Combine(d, "train.jsonl"), Row + "\n"); File.WriteAllText(Path.Combine(d, "train.csv"), "\"prompt,chosen\n"); }, null),
        };

        var failures = new List<string>();
        foreach (var (name, build, expected) in layouts)
        {
            using var dir = TestPaths.CreateTempDir();
            var folder = Directory.CreateDirectory(Path.Combine(dir.Path, "ds")).FullName;
            build(folder);
            var outcome = RunCase(() => PreferenceDatasetLoader.Load(folder), AllocationSlack);
            if (outcome is DpoSharpException e && e.Message.Contains(folder, StringComparison.Ordinal))
            {
                if (expected is not null && !e.Message.Contains(expected, StringComparison.Ordinal))
                {
                    failures.Add($"{name}: expected '{expected}' in: {e.Message}");
                }
            }
            else if (outcome is not null)
            {
                failures.Add($"{name}: {outcome.GetType().Name}: {outcome.Message}");
            }
            else if (expected is not null)
            {
                failures.Add($"{name}: loaded, expected an error with '{expected}'");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
