using System.Buffers.Binary;
using DpoSharp.IO.Gguf;

namespace DpoSharp.Tests.IO.Gguf;

/// <summary>The GGUF writer read back by the test project's own reader (<see cref="GgufFile"/>), and the F16 and Q8_0
/// encodings against values worked out by hand.</summary>
public sealed class GgufWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dposharp-gguf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void WrittenFileReadsBackWithEveryTypeAlignedOffsetsAndReversedDimensions()
    {
        var w = new GgufWriter();
        w.AddString("general.architecture", "llama");
        w.AddUInt32("llama.block_count", 7);
        w.AddInt32("test.negative", -5);
        w.AddFloat32("llama.rope.freq_base", 500000f);
        w.AddBool("tokenizer.ggml.add_bos_token", true);
        w.AddStringArray("tokenizer.ggml.tokens", ["a", "ü", ""]);
        w.AddFloat32Array("tokenizer.ggml.scores", [0.5f, -1f]);
        w.AddInt32Array("tokenizer.ggml.token_type", [1, 3, 6]);
        float[] odd = [1, 2, 3, 4, 5]; // 20 bytes: the next tensor needs 12 bytes of padding
        float[] half = [1f, -2f, 0.5f, 65504f];
        float[] q = [.. Enumerable.Range(0, 64).Select(i => i % 2 == 0 ? 127f - i : -(float)i)];
        w.AddTensor(new GgufTensor("odd", [5], GgmlType.F32, () => GgmlQuantization.ToF32(odd)));
        w.AddTensor(new GgufTensor("half", [2, 2], GgmlType.F16, () => GgmlQuantization.ToF16(half)));
        w.AddTensor(new GgufTensor("blk.0.q", [2, 32], GgmlType.Q8_0, () => GgmlQuantization.ToQ8_0(q)));
        var path = Path.Combine(_dir, "t.gguf");
        using (var s = File.Create(path))
        {
            w.WriteTo(s);
        }

        var bytes = File.ReadAllBytes(path);
        Assert.Equal("GGUF"u8.ToArray(), bytes[..4]);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(3ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)));  // tensors
        Assert.Equal(9ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16))); // keys, general.alignment first

        var f = GgufFile.Read(path);
        Assert.Equal(["general.alignment", "general.architecture", "llama.block_count", "test.negative", "llama.rope.freq_base", "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"], f.Keys);
        Assert.Equal((4u, 0u), f.MetadataTypes["general.alignment"]);
        Assert.Equal(32u, f.Get<uint>("general.alignment"));
        Assert.Equal((8u, 0u), f.MetadataTypes["general.architecture"]);
        Assert.Equal("llama", f.Get<string>("general.architecture"));
        Assert.Equal((4u, 0u), f.MetadataTypes["llama.block_count"]);
        Assert.Equal(7u, f.Get<uint>("llama.block_count"));
        Assert.Equal((5u, 0u), f.MetadataTypes["test.negative"]);
        Assert.Equal(-5, f.Get<int>("test.negative"));
        Assert.Equal((6u, 0u), f.MetadataTypes["llama.rope.freq_base"]);
        Assert.Equal(500000f, f.Get<float>("llama.rope.freq_base"));
        Assert.Equal((7u, 0u), f.MetadataTypes["tokenizer.ggml.add_bos_token"]);
        Assert.True(f.Get<bool>("tokenizer.ggml.add_bos_token"));
        Assert.Equal((9u, 8u), f.MetadataTypes["tokenizer.ggml.tokens"]);
        Assert.Equal(["a", "ü", ""], f.Strings("tokenizer.ggml.tokens"));
        Assert.Equal((9u, 6u), f.MetadataTypes["tokenizer.ggml.scores"]);
        Assert.Equal([0.5f, -1f], ((object[])f.Metadata["tokenizer.ggml.scores"]).Cast<float>());
        Assert.Equal((9u, 5u), f.MetadataTypes["tokenizer.ggml.token_type"]);
        Assert.Equal([1, 3, 6], ((object[])f.Metadata["tokenizer.ggml.token_type"]).Cast<int>());

        Assert.Equal(0, f.DataStart % 32);
        Assert.Equal(["odd", "half", "blk.0.q"], f.Tensors.Select(t => t.Name));
        Assert.Equal([5L], f.Tensor("odd").Dims);
        Assert.Equal([0ul, 32ul, 64ul], f.Tensors.Select(t => t.Offset)); // 20 → 32, 8 → 64
        Assert.Equal([32L, 2L], f.Tensor("blk.0.q").Dims);                  // innermost first
        Assert.Equal(8u, f.Tensor("blk.0.q").Type);
        Assert.Equal(1u, f.Tensor("half").Type);
        Assert.Equal(odd, f.Values("odd"));
        Assert.Equal(half, f.Values("half"));
        Assert.Equal(f.DataStart + 160, bytes.Length); // Q8_0 at 64: 2 blocks × 34 = 68 bytes, padded to 160
        Assert.Equal(0, bytes.Length % 32);
        var decoded = f.Values("blk.0.q");
        for (int i = 0; i < 64; i++)
        {
            Assert.True(Math.Abs(decoded[i] - q[i]) <= (i < 32 ? 127f : 126f) / 127 / 2 * 1.001, $"q[{i}] {q[i]} decoded {decoded[i]}");
        }
    }

    [Fact]
    public void DuplicateKeysAndTensorsAndPartialQ8BlocksAreRefused()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentException>(() => w.AddUInt32("general.alignment", 64));
        w.AddTensor(new GgufTensor("a", [2], GgmlType.F32, () => new byte[8]));
        Assert.Throws<ArgumentException>(() => w.AddTensor(new GgufTensor("a", [2], GgmlType.F32, () => new byte[8])));
        Assert.Throws<ArgumentException>(() => w.AddTensor(new GgufTensor("b", [4, 48], GgmlType.Q8_0, () => [])));
    }

    [Fact]
    public void Q8_0BlocksHoldAnF16ScaleAndValuesRoundedAwayFromZero()
    {
        // Block 1: max |x| = 127, so d = 1 (f16 0x3C00) and q = round(x): 2.5 → 3 and −2.5 → −3 (away from zero, where
        // round-half-even would give 2 and −2), 0.49 → 0, −3.5 → −4. Block 2: all zero, so d = 0 and q = 0.
        var x = new float[64];
        float[] head = [127f, 2.5f, -2.5f, 0.49f, -3.5f, -127f, 1.5f];
        head.CopyTo(x, 0);
        var bytes = GgmlQuantization.ToQ8_0(x);
        Assert.Equal(68, bytes.Length);
        Assert.Equal([0x00, 0x3C], bytes[..2]);
        Assert.Equal(new sbyte[] { 127, 3, -3, 0, -4, -127, 2, 0 }, bytes[2..10].Select(b => (sbyte)b));
        Assert.Equal(new byte[34], bytes[34..]);

        // Block of 0.5·(j − 16): max 8, d = 8/127 = 0.062992…, stored as f16 0x2C08 = 2^-4·(1 + 8/1024) = 0.06298828;
        // q = round(x · 127/8): x = −8 → −127, −7.5 → −119.06 → −119, 0.5 → 7.94 → 8, 7.5 → 119.06 → 119.
        var y = Enumerable.Range(0, 32).Select(j => 0.5f * (j - 16)).ToArray();
        var b2 = GgmlQuantization.ToQ8_0(y);
        Assert.Equal(0x2C08, BinaryPrimitives.ReadUInt16LittleEndian(b2));
        Assert.Equal(-127, (sbyte)b2[2]);
        Assert.Equal(-119, (sbyte)b2[3]);
        Assert.Equal(0, (sbyte)b2[2 + 16]);
        Assert.Equal(8, (sbyte)b2[2 + 17]);
        Assert.Equal(119, (sbyte)b2[2 + 31]);
        Assert.Throws<ArgumentException>(() => GgmlQuantization.ToQ8_0(new float[33]));
    }

    [Fact]
    public void F16RoundsToNearestEven()
    {
        // 1 = 0x3C00, −2 = 0xC000, 65504 (largest half) = 0x7BFF, 1/3 = 0x3555 (0.33325195), 1 + 2^-11 (halfway
        // between 1 and the next half 1 + 2^-10) → 1 (even mantissa).
        var bytes = GgmlQuantization.ToF16([1f, -2f, 65504f, 1f / 3, 1f + MathF.Pow(2, -11)]);
        Assert.Equal(new ushort[] { 0x3C00, 0xC000, 0x7BFF, 0x3555, 0x3C00 },
            Enumerable.Range(0, 5).Select(i => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2 * i))));
    }
}
