using System.Text.Json.Nodes;
using DpoSharp.Export;
using DpoSharp.IO.Gguf;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Tests.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Export;

/// <summary>
/// What <see cref="GgufExporter"/> writes, read back by the test project's own GGUF reader: the keys, tensor names,
/// shapes and layouts llama.cpp's converter writes for each architecture (tensor lists from llama.cpp's
/// <c>llama-model.cpp</c> loaders), the tokenizer, the stored types per --outtype, adapters, and refusals.
/// </summary>
[Collection(LlamaCpp.Collection)]
public sealed class GgufExporterTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("dposharp-gguf-export-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>The tensors llama.cpp's loader for each architecture reads from the tiny models (2 layers).</summary>
    private static string[] ExpectedTensors(string type)
    {
        string[] layer = type switch
        {
            "gpt2" => ["attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight", "attn_output.bias",
                "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"],
            "phi" => ["attn_norm.weight", "attn_norm.bias", "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight", "attn_v.bias",
                "attn_output.weight", "attn_output.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"],
            "qwen2" => ["attn_norm.weight", "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight", "attn_v.bias",
                "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"],
            _ => ["attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"],
        };
        string[] global = type switch
        {
            "gpt2" => ["token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias"], // tied: no output
            "phi" => ["token_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight", "output.bias"],
            "qwen2" => ["token_embd.weight", "output_norm.weight"], // tied: no output
            _ => ["token_embd.weight", "output_norm.weight", "output.weight"],
        };
        return [.. global, .. Enumerable.Range(0, 2).SelectMany(i => layer.Select(n => $"blk.{i}.{n}"))];
    }

    [Theory]
    [AllModelTypes]
    public void KeysTensorNamesAndLayoutsAreTheConvertersForTheArchitecture(string type)
    {
        var dir = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "m"), type);
        var path = Path.Combine(_root, "m.gguf");
        var result = GgufExporter.Export(dir, path, GgufOutType.F32);
        var f = GgufFile.Read(path);
        string arch = type switch { "mistral" => "llama", "phi" => "phi2", _ => type };
        Assert.Equal(arch, result.Architecture);
        Assert.Equal(arch, f.Get<string>("general.architecture"));
        Assert.Equal("m", f.Get<string>("general.name"));
        Assert.Equal(0u, f.Get<uint>("general.file_type"));
        Assert.Equal(32u, f.Get<uint>("general.alignment"));
        Assert.Equal(3u, f.Version);

        // Hyperparameters (tiny: hidden 32, 2 layers, 4 heads; GQA 2 for the Llama family; mistral's window 8).
        Assert.Equal(2u, f.Get<uint>($"{arch}.block_count"));
        Assert.Equal(type == "mistral" ? 8u : 128u, f.Get<uint>($"{arch}.context_length"));
        Assert.Equal(32u, f.Get<uint>($"{arch}.embedding_length"));
        Assert.Equal(type == "gpt2" ? 128u : 64u, f.Get<uint>($"{arch}.feed_forward_length"));
        Assert.Equal(4u, f.Get<uint>($"{arch}.attention.head_count"));
        if (type == "gpt2")
        {
            Assert.DoesNotContain(f.Keys, k => k.Contains("rope", StringComparison.Ordinal) || k.EndsWith("head_count_kv", StringComparison.Ordinal));
            Assert.Equal(1e-5f, f.Get<float>("gpt2.attention.layer_norm_epsilon"));
        }
        else
        {
            Assert.Equal(type == "phi" ? 4u : 2u, f.Get<uint>($"{arch}.attention.head_count_kv"));
            Assert.Equal(10000f, f.Get<float>($"{arch}.rope.freq_base"));
            Assert.Equal(type == "phi" ? 4u : 8u, f.Get<uint>($"{arch}.rope.dimension_count")); // phi: partial rotary 0.5 of 8
            Assert.Equal(type == "phi" ? 1e-5f : 1e-6f, f.Get<float>(type == "phi" ? "phi2.attention.layer_norm_epsilon" : $"{arch}.attention.layer_norm_rms_epsilon"));
        }

        // Tensors: exactly the loader's list, dimensions innermost first.
        Assert.Equal(ExpectedTensors(type).Order(StringComparer.Ordinal), f.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Equal([32L, GgufTestTokenizer.VocabSize], f.Tensor("token_embd.weight").Dims);
        Assert.All(f.Tensors, t => Assert.Equal(0u, t.Type));

        // Layouts against the Hugging Face weights, computed here with torch ops.
        using var model = ModelLoader.Load(dir);
        var p = model.Module.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        float[] Hf(Tensor t) => t.detach().contiguous().data<float>().ToArray();
        if (type == "gpt2")
        {
            Assert.Equal([32L, 96L], f.Tensor("blk.0.attn_qkv.weight").Dims);
            Assert.Equal(Hf(p["transformer.h.0.attn.c_attn.weight"].t()), f.Values("blk.0.attn_qkv.weight")); // Conv1D (in, out) → (out, in)
            Assert.Equal(Hf(p["transformer.h.1.mlp.c_proj.weight"].t()), f.Values("blk.1.ffn_down.weight"));
            Assert.Equal(Hf(p["transformer.wpe.weight"]), f.Values("position_embd.weight"));
            return;
        }

        Assert.Equal(Hf(p["model.embed_tokens.weight"]), f.Values("token_embd.weight"));
        var q = p["model.layers.1.self_attn.q_proj.weight"];  // (4·8, 32)
        var k = p["model.layers.1.self_attn.k_proj.weight"];  // (2·8, 32)
        if (type is "llama" or "mistral")
        {
            // convert_hf_to_gguf.py's permute: (heads, 2, d/2, in) → swap the middle axes → back.
            Assert.Equal(Hf(q.reshape(4, 2, 4, 32).transpose(1, 2).reshape(32, 32)), f.Values("blk.1.attn_q.weight"));
            Assert.Equal(Hf(k.reshape(2, 2, 4, 32).transpose(1, 2).reshape(16, 32)), f.Values("blk.1.attn_k.weight"));
            Assert.NotEqual(Hf(q), f.Values("blk.1.attn_q.weight"));
        }
        else
        {
            Assert.Equal(Hf(q), f.Values("blk.1.attn_q.weight")); // NeoX RoPE in llama.cpp: no permutation
            Assert.Equal(Hf(k), f.Values("blk.1.attn_k.weight"));
        }

        Assert.Equal(Hf(p["model.layers.0.self_attn.v_proj.weight"]), f.Values("blk.0.attn_v.weight"));
    }

    [Fact]
    public void TokenizerMetadataIsTheByteLevelBpeWithMergesSpecialsAndPadding()
    {
        var dir = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "m"), "qwen2");
        var path = Path.Combine(_root, "m.gguf");
        GgufExporter.Export(dir, path, GgufOutType.F16);
        var f = GgufFile.Read(path);
        Assert.Equal("gpt2", f.Get<string>("tokenizer.ggml.model"));
        Assert.Equal("gpt-2", f.Get<string>("tokenizer.ggml.pre"));
        var tokens = f.Strings("tokenizer.ggml.tokens");
        var types = ((object[])f.Metadata["tokenizer.ggml.token_type"]).Cast<int>().ToArray();
        Assert.Equal(GgufTestTokenizer.VocabSize, tokens.Length); // one per embedding row
        Assert.Equal(GgufTestTokenizer.VocabSize, types.Length);
        Assert.Equal("Ā", tokens[0]);                            // byte 0x00 in GPT-2's alphabet
        Assert.Equal("!", tokens[33]);
        Assert.Equal("Ġ", tokens[32]);                           // byte 0x20 in GPT-2's alphabet
        Assert.Equal("<|endoftext|>", tokens[GgufTestTokenizer.EndOfText]);
        Assert.Equal("<|im_end|>", tokens[GgufTestTokenizer.EndOfText + 2]);
        Assert.Equal($"[PAD{GgufTestTokenizer.Size}]", tokens[GgufTestTokenizer.Size]);
        Assert.Equal(1, types[0]);
        Assert.Equal(3, types[GgufTestTokenizer.EndOfText]);       // control
        Assert.Equal(5, types[GgufTestTokenizer.Size]);            // unused
        var merges = f.Strings("tokenizer.ggml.merges");
        Assert.Equal(GgufTestTokenizer.Merges, merges.Length);
        Assert.All(merges.Select((m, i) => (m, i)), x => Assert.Equal(tokens[256 + x.i], x.m.Replace(" ", "", StringComparison.Ordinal))); // merge #i made token 256+i
        Assert.Equal((uint)GgufTestTokenizer.EndOfText, f.Get<uint>("tokenizer.ggml.bos_token_id"));
        Assert.Equal((uint)GgufTestTokenizer.EndOfText + 2, f.Get<uint>("tokenizer.ggml.eos_token_id"));
        Assert.Equal((uint)GgufTestTokenizer.EndOfText, f.Get<uint>("tokenizer.ggml.unknown_token_id"));
        Assert.False(f.Metadata.ContainsKey("tokenizer.ggml.padding_token_id")); // the tokenizer names no pad token
        Assert.False(f.Get<bool>("tokenizer.ggml.add_bos_token"));
        Assert.Equal(GgufTestTokenizer.Template, f.Get<string>("tokenizer.chat_template"));
        Assert.False(f.Metadata.ContainsKey("tokenizer.ggml.scores"));

        // llama.cpp reads the same vocabulary and splits text into the same tokens as DpoSharp.
        var (count, bos, eos) = LlamaCpp.Vocabulary(path);
        Assert.Equal((GgufTestTokenizer.VocabSize, GgufTestTokenizer.EndOfText, GgufTestTokenizer.EndOfText + 2), (count, bos, eos));
        const string text = "the cat sat on the mat, then the dog ate 42 bones!";
        var expected = DpoSharp.Tokenization.HfTokenizer.Load(dir).Encode(text);
        Assert.True(expected.Any(id => id >= 256), "the text uses merged tokens");
        Assert.Equal(expected, LlamaCpp.Tokenize(path, text));
    }

    [Fact]
    public void SentencePieceTokenizerIsWrittenAsLlamaWithScoresAndLlamaCppTokenizesLikeDpoSharp()
    {
        // A Llama-2-style tokenizer.model: <unk> <s> </s>, 256 byte pieces, then merged pieces scored −id.
        string[] merged = ["▁", "t", "h", "e", "a", "c", "▁t", "he", "▁the", "at", "▁c", "▁cat", "s", "▁s", "▁sat"];
        var pieces = new[] { "<unk>", "<s>", "</s>" }.Concat(Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>")).Concat(merged).ToList();
        var dir = TinyCheckpoints.Write(Path.Combine(_root, "spm"), "llama", vocabSize: GgufTestTokenizer.VocabSize, withTokenizer: false,
            configure: c => { c["bos_token_id"] = 1; c["eos_token_id"] = 2; });
        File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), SentencePieceModelWriter.Write(pieces));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), new JsonObject
        {
            ["tokenizer_class"] = "LlamaTokenizer",
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
            ["unk_token"] = "<unk>",
            ["add_bos_token"] = true,
            ["add_eos_token"] = false,
        }.ToJsonString());
        var path = Path.Combine(_root, "spm.gguf");
        GgufExporter.Export(dir, path, GgufOutType.Q8_0);
        var f = GgufFile.Read(path);
        Assert.Equal("llama", f.Get<string>("tokenizer.ggml.model"));
        Assert.False(f.Metadata.ContainsKey("tokenizer.ggml.merges"));
        var tokens = f.Strings("tokenizer.ggml.tokens");
        var scores = ((object[])f.Metadata["tokenizer.ggml.scores"]).Cast<float>().ToArray();
        var types = ((object[])f.Metadata["tokenizer.ggml.token_type"]).Cast<int>().ToArray();
        Assert.Equal(GgufTestTokenizer.VocabSize, tokens.Length);
        Assert.Equal(("<unk>", 2), (tokens[0], types[0]));
        Assert.Equal(("<s>", 3), (tokens[1], types[1]));
        Assert.Equal(("<0x41>", 6), (tokens[3 + 0x41], types[3 + 0x41]));
        Assert.Equal(("▁the", 1, -267f), (tokens[267], types[267], scores[267]));
        Assert.Equal(5, types[^1]);
        Assert.Equal((1u, 2u, 0u), (f.Get<uint>("tokenizer.ggml.bos_token_id"), f.Get<uint>("tokenizer.ggml.eos_token_id"), f.Get<uint>("tokenizer.ggml.unknown_token_id")));
        Assert.True(f.Get<bool>("tokenizer.ggml.add_bos_token"));

        const string text = "the cat sat";
        var expected = DpoSharp.Tokenization.HfTokenizer.Load(dir).Encode(text);
        Assert.Equal([267, 270, 273], expected); // ▁the ▁cat ▁sat
        Assert.Equal(expected, LlamaCpp.Tokenize(path, text));
    }

    [Fact]
    public void F16AndQ8_0StoreWeightMatricesSoAndKeepNormsBiasesAndPositionsInF32()
    {
        var dir = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "gpt2"), "gpt2", configure: c => c["n_inner"] = 48); // ffn rows of 48: not whole Q8_0 blocks
        foreach (var (outType, fileType, weightType) in new[] { (GgufOutType.F16, 1u, 1u), (GgufOutType.Q8_0, 7u, 8u) })
        {
            var path = Path.Combine(_root, $"{outType}.gguf");
            GgufExporter.Export(dir, path, outType);
            var f = GgufFile.Read(path);
            Assert.Equal(fileType, f.Get<uint>("general.file_type"));
            foreach (var t in f.Tensors)
            {
                bool f32 = t.Dims.Length == 1 || t.Name.StartsWith("position_embd", StringComparison.Ordinal);
                uint expected = f32 ? 0u : t.Name == "blk.0.ffn_down.weight" || t.Name == "blk.1.ffn_down.weight" ? (outType == GgufOutType.Q8_0 ? 1u : weightType) : weightType;
                Assert.True(expected == t.Type, $"{outType} {t.Name}: type {t.Type}, expected {expected}");
            }

            // Stored values lie within one rounding of the fp32 weights.
            using var model = ModelLoader.Load(dir);
            var w = model.Module.named_parameters().First(kv => kv.name == "transformer.h.0.attn.c_attn.weight").parameter.t().contiguous().data<float>().ToArray();
            var stored = f.Values("blk.0.attn_qkv.weight");
            for (int b = 0; b < w.Length / 32; b++)
            {
                float amax = w.Skip(b * 32).Take(32).Max(MathF.Abs);
                for (int j = b * 32; j < (b + 1) * 32; j++)
                {
                    // Q8_0: half a step d/2 = max|block| / 254, plus up to 127 steps of d's own f16 rounding (relative 2^-11).
                    double tol = outType == GgufOutType.Q8_0 ? (amax / 254.0) + (amax / 2048.0) + 1e-7 : (Math.Abs(w[j]) / 2048.0) + 1e-7;
                    Assert.True(Math.Abs(stored[j] - w[j]) <= tol, $"{outType} [{j}] {w[j]} stored {stored[j]}");
                }
            }
        }
    }

    [Fact]
    public void AnAdapterIsMergedFirst()
    {
        var (baseDir, adapterDir) = TinyAdapters.Write(_root, "llama");
        var merged = LoraMerge.MergeToCheckpoint(baseDir, adapterDir, Path.Combine(_root, "merged")).OutputDirectory;
        var withAdapter = Path.Combine(_root, "a.gguf");
        var fromMerged = Path.Combine(_root, "b.gguf");
        var r = GgufExporter.Export(baseDir, withAdapter, GgufOutType.F32, adapterDir);
        GgufExporter.Export(merged, fromMerged, GgufOutType.F32);
        Assert.Equal(14, r.MergedLayers);
        var a = GgufFile.Read(withAdapter);
        var b = GgufFile.Read(fromMerged);
        var plain = GgufFile.Read(GgufExporterTestsHelper.ExportBase(baseDir, Path.Combine(_root, "c.gguf")));
        Assert.All(a.Tensors, t => Assert.Equal(b.Values(t.Name), a.Values(t.Name)));
        Assert.NotEqual(plain.Values("blk.0.attn_q.weight"), a.Values("blk.0.attn_q.weight"));
    }

    [Fact]
    public void SlidingWindowBelowTheContextIsDeclaredAsTheContextLength()
    {
        var dir = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "m"), "mistral");
        var r = GgufExporter.Export(dir, Path.Combine(_root, "m.gguf"), GgufOutType.F16);
        Assert.Equal(8u, GgufFile.Read(r.OutputPath).Get<uint>("llama.context_length"));
        Assert.Contains(r.Warnings, w => w.Contains("sliding_window 8", StringComparison.Ordinal));
    }

    [Fact]
    public void BadInputIsRefusedNamingTheProblemAndLeavesNoFile()
    {
        var dir = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "m"), "llama");
        var output = Path.Combine(_root, "out", "m.gguf");
        void Refused(Action act, params string[] words)
        {
            var e = Assert.Throws<DpoSharpException>(act);
            Assert.All(words, w => Assert.Contains(w, e.Message, StringComparison.Ordinal));
            Assert.False(File.Exists(output));
            Assert.True(!Directory.Exists(Path.GetDirectoryName(output)) || !Directory.EnumerateFiles(Path.GetDirectoryName(output)!).Any(), "a temporary file was left");
        }

        Refused(() => GgufExporter.ParseOutType("q4_k"), "q4_k", "f32, f16, q8_0");
        Refused(() => GgufExporter.CheckFormat("onnx"), "onnx", "gguf");
        Refused(() => GgufExporter.Export(Path.Combine(_root, "nope"), output, GgufOutType.F16), "nope", "not found");
        Refused(() => GgufExporter.Export(dir, output, GgufOutType.F16, adapterDir: Path.Combine(_root, "no-adapter")), "no-adapter");

        // A config llama.cpp's graph cannot run: a Llama with gelu, a Qwen2 with llama3 RoPE scaling.
        var gelu = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "gelu"), "llama", configure: c => c["hidden_act"] = "gelu_new");
        Refused(() => GgufExporter.Export(gelu, output, GgufOutType.F16), "gelu_new", "cannot be expressed in GGUF");
        var rope = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "rope"), "qwen2", configure: c => c["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0 });
        Refused(() => GgufExporter.Export(rope, output, GgufOutType.F16), "rope_scaling 'llama3'", "qwen2");

        // No tokenizer, and a tokenizer with more tokens than the embedding has rows.
        var bare = TinyCheckpoints.Write(Path.Combine(_root, "bare"), "llama", withTokenizer: false);
        Refused(() => GgufExporter.Export(bare, output, GgufOutType.F16), "no tokenizer files", "copy the base model's tokenizer");
        var small = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "small"), "llama");
        TinyCheckpoints.Write(small, "llama", vocabSize: 260, withTokenizer: false);
        GgufTestTokenizer.Write(small);
        Refused(() => GgufExporter.Export(small, output, GgufOutType.F16), "has id", "260 rows");

        // The output: a folder, or an existing file without --overwrite (left as it was).
        Directory.CreateDirectory(output);
        Refused(() => GgufExporter.Export(dir, output, GgufOutType.F16), "is a folder");
        Directory.Delete(output);
        File.WriteAllText(output, "keep");
        var e = Assert.Throws<DpoSharpException>(() => GgufExporter.Export(dir, output, GgufOutType.F16));
        Assert.Contains("--overwrite", e.Message, StringComparison.Ordinal);
        Assert.Equal("keep", File.ReadAllText(output));
        GgufExporter.Export(dir, output, GgufOutType.F16, overwrite: true);
        Assert.Equal("GGUF", File.ReadAllText(output)[..4]);
        Assert.Equal(["m.gguf"], Directory.GetFileSystemEntries(Path.GetDirectoryName(output)!).Select(Path.GetFileName));
    }
}

/// <summary>Helpers of <see cref="GgufExporterTests"/>.</summary>
internal static class GgufExporterTestsHelper
{
    public static string ExportBase(string dir, string path) => GgufExporter.Export(dir, path, GgufOutType.F32).OutputPath;
}
