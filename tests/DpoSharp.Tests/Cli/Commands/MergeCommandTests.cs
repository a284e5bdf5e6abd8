using System.Text.Json.Nodes;
using DpoSharp.IO;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Tests.Models.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Cli.Commands;

/// <summary><c>dposharp merge</c>: a PEFT adapter folded into its base and written as a plain checkpoint.</summary>
public class MergeCommandTests
{
    /// <summary>Every file and folder under <paramref name="dir"/> with its bytes (folders: empty), by relative path.</summary>
    private static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetRelativePath(dir, p), p => File.Exists(p) ? File.ReadAllBytes(p) : []);

    private static void AssertUnchanged(Dictionary<string, byte[]> before, string dir)
    {
        var after = Snapshot(dir);
        Assert.Equal(before.Keys.Order(StringComparer.Ordinal), after.Keys.Order(StringComparer.Ordinal));
        Assert.All(before, kv => Assert.Equal(kv.Value, after[kv.Key]));
    }

    [Theory]
    [AllModelTypes]
    public void MergedCheckpointEqualsBasePlusAdapterAndHoldsNoAdapter(string type)
    {
        using var tmp = TestPaths.CreateTempDir();
        var (baseDir, adapterDir) = TinyAdapters.Write(tmp.Path, type);
        var outDir = Path.Combine(tmp.Path, "out", "merged"); // the parent folder does not exist yet
        var (rc, _, err) = CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", outDir, "--device", "cpu");
        Assert.True(rc == 0, err);
        int layers = type switch { "gpt2" => 8, "phi" => 12, _ => 14 }; // all-linear, 2 decoder layers
        Assert.Contains($"merged {layers} LoRA layers (r 4, lora_alpha 8)", err);
        Assert.Equal(["merged"], Directory.GetFileSystemEntries(Path.Combine(tmp.Path, "out")).Select(Path.GetFileName)); // no temp folder left

        // A full checkpoint with the base's tokenizer files, and nothing of the adapter.
        Assert.Equal(
            ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"],
            Directory.GetFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(baseDir, f)), File.ReadAllBytes(Path.Combine(outDir, f)));
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!.AsObject();
        Assert.Equal(type, config["model_type"]!.GetValue<string>());
        Assert.Equal("float32", config["torch_dtype"]!.GetValue<string>());
        using (var merged = SafeTensorsCheckpoint.Open(outDir))
        using (var original = SafeTensorsCheckpoint.Open(baseDir))
        {
            Assert.Equal(original.Names.Order(StringComparer.Ordinal), merged.Names.Order(StringComparer.Ordinal));
            Assert.DoesNotContain(merged.Names, n => n.Contains("lora", StringComparison.OrdinalIgnoreCase));

            // One adapted weight by hand from the files: W + (alpha / r)·B·A; GPT-2's Conv1D stores Wᵀ (in, out).
            var layer = type switch
            {
                "gpt2" => "transformer.h.1.attn.c_attn",
                "phi" => "model.layers.1.mlp.fc1",
                _ => "model.layers.1.self_attn.k_proj",
            };
            var key = layer + ".weight";
            using var adapterFile = SafeTensorsFile.Open(Path.Combine(adapterDir, PeftAdapter.WeightsFileName));
            using var a = adapterFile.Read(PeftAdapter.WeightKey(layer, b: false)).to(ScalarType.Float64);  // (r, in)
            using var b = adapterFile.Read(PeftAdapter.WeightKey(layer, b: true)).to(ScalarType.Float64);   // (out, r)
            using var delta = b.matmul(a) * (8.0 / 4.0);                                                    // (out, in)
            using var w = original.Read(key).to(ScalarType.Float64);
            using var expected = w + (type == "gpt2" ? delta.t() : delta);
            using var actual = merged.Read(key).to(ScalarType.Float64);
            Assert.True(delta.abs().max().item<double>() > 0.01, "the adapter must change the weight");
            Assert.True((actual - expected).abs().max().item<double>() < 1e-5, $"{type}: {key} is not W + scaling·B·A");
        }

        // Its log-probs are those of the base with the adapter loaded (not merged), and not those of the base.
        using var withAdapter = TinyAdapters.LoadWithAdapter(baseDir, adapterDir);
        using var reloaded = ModelLoader.Load(outDir);
        using var plain = ModelLoader.Load(baseDir);
        Assert.False(reloaded.HasAdapters());
        using var ids = LoraModelTests.Ids(seed: 3);
        using var want = LoraModelTests.LogProbs(withAdapter, ids);
        using var got = LoraModelTests.LogProbs(reloaded, ids);
        using var baseLogProbs = LoraModelTests.LogProbs(plain, ids);
        double diff = (got - want).abs().max().item<float>();
        Assert.True(diff <= 1e-5, $"{type}: merged vs base+adapter log-probs differ by {diff}");
        Assert.True((baseLogProbs - want).abs().max().item<float>() > 1e-2, "the adapter must change the log-probs");
    }

    [Fact]
    public void AnExistingOutputFolderIsKeptUnlessOverwriteIsGiven()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (baseDir, adapterDir) = TinyAdapters.Write(tmp.Path, "llama");
        var outDir = Directory.CreateDirectory(Path.Combine(tmp.Path, "merged")).FullName;
        File.WriteAllText(Path.Combine(outDir, "notes.txt"), "keep me");
        var before = Snapshot(outDir);

        var (rc, _, err) = CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", outDir);
        Assert.Equal(2, rc);
        Assert.Contains(outDir, err);
        Assert.Contains("not empty", err);
        Assert.Contains("--overwrite", err);
        AssertUnchanged(before, outDir);

        // An empty folder is fine without --overwrite.
        var empty = Directory.CreateDirectory(Path.Combine(tmp.Path, "empty")).FullName;
        (rc, _, err) = CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", empty);
        Assert.True(rc == 0, err);
        Assert.True(File.Exists(Path.Combine(empty, "model.safetensors")));

        // --overwrite replaces the folder: the old file is gone, the merged model is the same as in the empty folder.
        (rc, _, err) = CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", outDir, "--overwrite");
        Assert.True(rc == 0, err);
        Assert.False(File.Exists(Path.Combine(outDir, "notes.txt")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(empty, "model.safetensors")), File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")));
        Assert.Equal(["adapter", "base", "empty", "merged"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // Writing over an input is refused even with --overwrite.
        var baseBefore = Snapshot(baseDir);
        (rc, _, err) = CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", baseDir, "--overwrite");
        Assert.Equal(2, rc);
        Assert.Contains("base model directory", err);
        (rc, _, err) = CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", tmp.Path, "--overwrite");
        Assert.Equal(2, rc);
        Assert.Contains("parent of the base model directory", err);
        AssertUnchanged(baseBefore, baseDir);
    }

    [Fact]
    public void MissingOrWrongAdaptersExit2NamingThePathAndWriteNothing()
    {
        using var tmp = TestPaths.CreateTempDir();
        using var others = TestPaths.CreateTempDir();
        var (baseDir, adapterDir) = TinyAdapters.Write(tmp.Path, "llama");
        var outDir = Path.Combine(tmp.Path, "merged");

        void AssertBad(string model, string adapter, params string[] expected)
        {
            var (rc, _, err) = CliRunner.Run("merge", "--model", model, "--adapter", adapter, "--output-dir", outDir);
            Assert.True(rc == 2, $"exit {rc}: {err}");
            Assert.StartsWith("error: ", err);
            foreach (var e in expected)
            {
                Assert.Contains(e, err);
            }

            Assert.False(Directory.Exists(outDir));
            Assert.Equal(["adapter", "base"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }

        var missing = Path.Combine(tmp.Path, "no-such-adapter");
        AssertBad(baseDir, missing, missing, "adapter directory not found");
        AssertBad(Path.Combine(tmp.Path, "no-such-base"), adapterDir, Path.Combine(tmp.Path, "no-such-base"), "not found");

        // A folder with the weights but no adapter_config.json.
        var noConfig = Directory.CreateDirectory(Path.Combine(others.Path, "no-config")).FullName;
        File.Copy(Path.Combine(adapterDir, PeftAdapter.WeightsFileName), Path.Combine(noConfig, PeftAdapter.WeightsFileName));
        AssertBad(baseDir, noConfig, noConfig, PeftAdapter.ConfigFileName);

        // An adapter saved from a wider llama: same layer names, other shapes.
        var (_, wide) = TinyAdapters.Write(others.Path, "llama", configure: c => c["hidden_size"] = 48, baseName: "wide-base", adapterName: "wide");
        AssertBad(baseDir, wide, Path.Combine(wide, PeftAdapter.WeightsFileName), "has shape", "Does the adapter belong to this base model");

        // A GPT-2 adapter on a llama base.
        var (_, gpt2) = TinyAdapters.Write(others.Path, "gpt2", baseName: "gpt2-base", adapterName: "gpt2");
        AssertBad(baseDir, gpt2, Path.Combine(gpt2, PeftAdapter.WeightsFileName), "transformer.h.0.attn.c_attn", "not a linear layer of this llama model");
    }

    [Fact]
    public void AMergeThatFailsWhileWritingLeavesNoOutputFolderAndKeepsAnOldOne()
    {
        using var tmp = TestPaths.CreateTempDir();
        var (baseDir, adapterDir) = TinyAdapters.Write(tmp.Path, "gpt2");

        // A tokenizer file of the base that cannot be read: the config and weights are written, then copying fails.
        var broken = Path.Combine(baseDir, "tokenizer.model");
        File.CreateSymbolicLink(broken, Path.Combine(tmp.Path, "gone", "tokenizer.model"));
        var outDir = Path.Combine(tmp.Path, "merged");
        var (rc, _, err) = CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", outDir);
        Assert.Equal(2, rc);
        Assert.Contains("tokenizer.model", err);
        Assert.False(Directory.Exists(outDir));
        Assert.Equal(["adapter", "base"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // With --overwrite over an earlier merge: the earlier one stays as it was.
        File.Delete(broken);
        Assert.Equal(0, CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", outDir).Rc);
        var before = Snapshot(outDir);
        File.CreateSymbolicLink(broken, Path.Combine(tmp.Path, "gone", "tokenizer.model"));
        (rc, _, err) = CliRunner.Run("merge", "--model", baseDir, "--adapter", adapterDir, "--output-dir", outDir, "--overwrite");
        Assert.Equal(2, rc);
        AssertUnchanged(before, outDir);
        Assert.Equal(["adapter", "base", "merged"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }
}
