namespace DpoSharp.Tests.Cli.Commands;

/// <summary><c>dposharp export</c>: a GGUF file, exit 0; bad input exits 2 naming the problem and writes nothing.</summary>
[Collection(LlamaCpp.Collection)]
public sealed class ExportCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("dposharp-export-cli-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void ExportsAGgufFileThatLlamaCppLoads()
    {
        var dir = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "tiny-qwen"), "qwen2");
        var output = Path.Combine(_root, "out", "tiny.gguf"); // the folder does not exist yet
        var (rc, _, err) = CliRunner.Run("export", "--model", dir, "--format", "gguf", "--output", output, "--outtype", "q8_0");
        Assert.True(rc == 0, err);
        Assert.Contains("exported qwen2 (", err, StringComparison.Ordinal);
        Assert.Contains("q8_0) in ", err, StringComparison.Ordinal);
        Assert.Equal(["tiny.gguf"], Directory.GetFileSystemEntries(Path.Combine(_root, "out")).Select(Path.GetFileName)); // no temp file left
        var f = GgufFile.Read(output);
        Assert.Equal(7u, f.Get<uint>("general.file_type"));
        Assert.Equal(GgufTestTokenizer.VocabSize, LlamaCpp.Vocabulary(output).Count);
    }

    [Fact]
    public void AnAdapterIsMergedAndReported()
    {
        var (baseDir, adapterDir) = TinyAdapters.Write(_root, "phi");
        var output = Path.Combine(_root, "phi.gguf");
        var (rc, _, err) = CliRunner.Run("export", "--model", baseDir, "--adapter", adapterDir, "--output", output, "--outtype", "f32");
        Assert.True(rc == 0, err);
        Assert.Contains("exported phi2 (", err, StringComparison.Ordinal);
        Assert.Contains("12 LoRA layers merged", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--outtype", "q4_k_m", "'q4_k_m' is not supported; use one of f32, f16, q8_0")]
    [InlineData("--format", "onnx", "--format 'onnx' is not supported")]
    [InlineData("--model", "missing", "model directory not found")]
    [InlineData("--adapter", "missing-adapter", "missing-adapter")]
    public void BadInputExits2WithoutAnOutputFile(string option, string value, string message)
    {
        var dir = GgufTestTokenizer.Checkpoint(Path.Combine(_root, "m"), "gpt2");
        var output = Path.Combine(_root, "out.gguf");
        var args = new Dictionary<string, string> { ["--model"] = dir, ["--output"] = output, ["--outtype"] = "f16" };
        args[option] = value is "missing" or "missing-adapter" ? Path.Combine(_root, value) : value;
        var (rc, _, err) = CliRunner.Run(["export", .. args.SelectMany(kv => new[] { kv.Key, kv.Value })]);
        Assert.Equal(2, rc);
        Assert.Contains(message, err, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.EnumerateFiles(_root));
    }
}
