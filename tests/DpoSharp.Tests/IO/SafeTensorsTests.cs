using System.Buffers.Binary;
using System.Text;
using DpoSharp.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.IO;

public class SafeTensorsTests
{
    /// <summary>Builds a safetensors file by hand: 8-byte little-endian header length, JSON header, data.</summary>
    private static string WriteRaw(string dir, string name, string header, byte[] data, ulong? headerLenOverride = null)
    {
        var path = Path.Combine(dir, name);
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLenOverride ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public void ReadsHandBuiltFileWithAllDtypes()
    {
        using var tmp = TestPaths.CreateTempDir();
        var data = new List<byte>();
        data.AddRange(Floats(1f, 2f, 3f, -4.5f));                              // F32 [2,2]  0..16
        data.AddRange(new long[] { 7, -8, 1L << 40 }.SelectMany(BitConverter.GetBytes)); // I64 [3]   16..40
        data.AddRange(new[] { 5, -6 }.SelectMany(BitConverter.GetBytes));      // I32 [2]    40..48
        data.AddRange(new byte[] { 0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F });      // BF16 [3] = 1, -2, 0.5   48..54
        data.AddRange(new byte[] { 0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38 });      // F16 [3] = 1, -2, 0.5    54..60
        var header = """
            {"__metadata__":{"format":"pt"},
             "a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},
             "b":{"dtype":"I64","shape":[3],"data_offsets":[16,40]},
             "c":{"dtype":"I32","shape":[2],"data_offsets":[40,48]},
             "d":{"dtype":"BF16","shape":[3],"data_offsets":[48,54]},
             "e":{"dtype":"F16","shape":[1,3],"data_offsets":[54,60]}}
            """;
        var path = WriteRaw(tmp.Path, "x.safetensors", header, data.ToArray());
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(new[] { 1f, 2f, 3f, -4.5f }, f.Read("a").data<float>().ToArray());
        Assert.Equal(new long[] { 2, 2 }, f.Read("a").shape);
        Assert.Equal(new long[] { 7, -8, 1L << 40 }, f.Read("b").data<long>().ToArray());
        Assert.Equal(new[] { 5, -6 }, f.Read("c").data<int>().ToArray());
        Assert.Equal(ScalarType.BFloat16, f.Read("d").dtype);
        Assert.Equal(new[] { 1f, -2f, 0.5f }, f.Read("d").to(ScalarType.Float32).data<float>().ToArray());
        Assert.Equal(ScalarType.Float16, f.Read("e").dtype);
        Assert.Equal(new[] { 1f, -2f, 0.5f }, f.Read("e").to(ScalarType.Float32).reshape(-1).data<float>().ToArray());

        // ReadInto converts dtype (BF16 file -> F32 target).
        var target = zeros(3);
        f.ReadInto("d", target);
        Assert.Equal(new[] { 1f, -2f, 0.5f }, target.data<float>().ToArray());
    }

    [Fact]
    public void WriterRoundTripsBitExactlyWithAlignedHeader()
    {
        using var tmp = TestPaths.CreateTempDir();
        var tensors = new List<(string, Tensor)>
        {
            ("w", randn(3, 5)),
            ("h", randn(4).to(ScalarType.Float16)),
            ("b", randn(2, 2).to(ScalarType.BFloat16)),
            ("i", tensor(new long[] { 1, 2, long.MaxValue })),
            ("j", tensor(new[] { -1, 0, 1 })),
            ("t", randn(4, 3).t()), // non-contiguous
        };
        var path = Path.Combine(tmp.Path, "rt.safetensors");
        SafeTensorsWriter.Write(path, tensors);
        var bytes = File.ReadAllBytes(path);
        long headerLen = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLen % 8);
        Assert.Contains("\"format\":\"pt\"", Encoding.UTF8.GetString(bytes, 8, (int)headerLen));
        using var f = SafeTensorsFile.Open(path);
        foreach (var (name, t) in tensors)
        {
            var back = f.Read(name);
            Assert.Equal(t.dtype, back.dtype);
            Assert.Equal(t.shape, back.shape);
            Assert.True(back.equal(t).all().item<bool>(), name);
        }
    }

    [Fact]
    public void WriterRoundTripsByteBoolInt8AndFloat64WithSpecDTypeNames()
    {
        using var tmp = TestPaths.CreateTempDir();
        using var rng = torch.random.get_rng_state();
        var tensors = new List<(string, Tensor)>
        {
            ("rng", rng),
            ("u8", tensor(new byte[] { 0, 7, 255 })),
            ("mask", tensor(new[] { true, false, true, true })),
            ("i8", tensor(new sbyte[] { -128, 0, 127 })),
            ("f64", tensor(new[] { Math.PI, -1e300 })),
        };
        var path = Path.Combine(tmp.Path, "state.safetensors");
        SafeTensorsWriter.Write(path, tensors);
        var bytes = File.ReadAllBytes(path);
        long headerLen = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)headerLen);
        foreach (var dtype in new[] { "U8", "BOOL", "I8", "F64" })
        {
            Assert.Contains($"\"dtype\":\"{dtype}\"", header);
        }

        using var f = SafeTensorsFile.Open(path);
        var all = f.ReadAll();
        foreach (var (name, t) in tensors)
        {
            using var back = all[name];
            Assert.Equal(t.dtype, back.dtype);
            Assert.Equal(t.shape, back.shape);
            Assert.True(back.equal(t).all().item<bool>(), name);
        }
    }

    public static TheoryData<string, string, string> Malformed => new()
    {
        { "bad-json", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]""", "not valid JSON" },
        { "not-object", "[1,2,3]", "not a JSON object" },
        { "unknown-dtype", """{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}""", "dtype 'F8_E4M3' is not supported" },
        { "dtype-not-string", """{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}""", "'dtype'" },
        { "shape-bytes-mismatch", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}""", "needs 8 bytes" },
        { "overlap", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""", "overlap" },
        { "beyond-data", """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "beyond the data section" },
        { "negative-shape", """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "non-negative integers" },
        { "reversed-offsets", """{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}""", "after end" },
        { "huge-shape", """{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}""", "too large" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedHeadersGiveClearErrors(string name, string header, string expected)
    {
        using var tmp = TestPaths.CreateTempDir();
        var path = WriteRaw(tmp.Path, name + ".safetensors", header, Floats(1f, 2f));
        var e = Assert.Throws<DpoSharpException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
        if (name is "unknown-dtype" or "shape-bytes-mismatch" or "beyond-data")
        {
            Assert.Contains("'a'", e.Message); // names the tensor
        }
    }

    [Fact]
    public void HugeOrOversizedHeaderLengthIsRejectedWithoutAllocating()
    {
        using var tmp = TestPaths.CreateTempDir();
        var huge = WriteRaw(tmp.Path, "huge.safetensors", "{}", [], headerLenOverride: 1UL << 62);
        Assert.Contains("out of range", Assert.Throws<DpoSharpException>(() => SafeTensorsFile.Open(huge)).Message);
        var beyond = WriteRaw(tmp.Path, "beyond.safetensors", "{}", [], headerLenOverride: 1000);
        Assert.Contains("exceeds the file size", Assert.Throws<DpoSharpException>(() => SafeTensorsFile.Open(beyond)).Message);
        var tiny = Path.Combine(tmp.Path, "tiny.safetensors");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Assert.Contains("too short", Assert.Throws<DpoSharpException>(() => SafeTensorsFile.Open(tiny)).Message);
    }

    [Fact]
    public void TruncatedFileIsRejected()
    {
        using var tmp = TestPaths.CreateTempDir();
        var path = Path.Combine(tmp.Path, "t.safetensors");
        SafeTensorsWriter.Write(path, [("first", randn(8)), ("last", randn(16))]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]);
        var e = Assert.Throws<DpoSharpException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("'last'", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void RandomCorruptionEitherReadsOrGivesDpoSharpException()
    {
        using var tmp = TestPaths.CreateTempDir();
        var good = Path.Combine(tmp.Path, "good.safetensors");
        SafeTensorsWriter.Write(good, [("a", randn(3, 4)), ("b", tensor(new long[] { 1, 2 })), ("c", randn(5).to(ScalarType.BFloat16))]);
        var original = File.ReadAllBytes(good);
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        var rng = new Random(1);
        var path = Path.Combine(tmp.Path, "bad.safetensors");
        int rejected = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])original.Clone();
            if (trial % 3 == 0)
            {
                bytes = bytes[..rng.Next(bytes.Length)];                        // truncation anywhere
            }
            else
            {
                for (int k = 0; k < 1 + (trial % 4); k++)
                {
                    bytes[rng.Next(headerEnd)] = (byte)rng.Next(256);          // header / length corruption
                }
            }

            File.WriteAllBytes(path, bytes);
            try
            {
                using var f = SafeTensorsFile.Open(path);
                foreach (var name in f.Tensors.Keys)
                {
                    f.Read(name).Dispose();
                }
            }
            catch (DpoSharpException e)
            {
                Assert.Contains(path, e.Message);
                rejected++;
            }
        }

        Assert.True(rejected > 150, $"only {rejected} of 300 corruptions were detected");
    }

    [Fact]
    public void ShardedCheckpointIndexErrorsAreClear()
    {
        using var tmp = TestPaths.CreateTempDir();
        SafeTensorsCheckpoint.Write(tmp.Path, [("a", randn(100)), ("b", randn(100)), ("c", randn(100))], maxShardBytes: 500);
        Assert.True(File.Exists(Path.Combine(tmp.Path, SafeTensorsCheckpoint.IndexFileName)));
        Assert.Equal(3, Directory.GetFiles(tmp.Path, "model-*-of-00003.safetensors").Length);
        using (var ck = SafeTensorsCheckpoint.Open(tmp.Path))
        {
            Assert.Equal(["a", "b", "c"], ck.Names.Order().ToArray());
        }

        File.Delete(Path.Combine(tmp.Path, "model-00002-of-00003.safetensors"));
        var e = Assert.Throws<DpoSharpException>(() => SafeTensorsCheckpoint.Open(tmp.Path));
        Assert.Contains("model-00002-of-00003.safetensors", e.Message);

        using var empty = TestPaths.CreateTempDir();
        Assert.Contains("no model.safetensors", Assert.Throws<DpoSharpException>(() => SafeTensorsCheckpoint.Open(empty.Path)).Message);
    }
}
