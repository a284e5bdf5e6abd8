using System.Text;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// A minimal GGUF reader written from the format description (ggml <c>docs/gguf.md</c>), independent of the library's
/// writer: header, typed metadata, tensor infos (dimensions innermost first), the data section at the aligned offset,
/// and F32/F16/Q8_0 decoding. Checks what a loader checks: magic, version, offsets aligned and inside the file.
/// </summary>
internal sealed class GgufFile
{
    /// <summary>One tensor info.</summary>
    public sealed record TensorInfo(string Name, long[] Dims, uint Type, ulong Offset);

    public uint Version { get; private init; }

    /// <summary>Metadata values: uint, int, float, bool, string, ulong, long, double, or object[] for arrays.</summary>
    public Dictionary<string, object> Metadata { get; } = new(StringComparer.Ordinal);

    /// <summary>Type tag of each metadata value (and element tag of arrays).</summary>
    public Dictionary<string, (uint Type, uint ElementType)> MetadataTypes { get; } = new(StringComparer.Ordinal);

    /// <summary>Metadata keys in file order.</summary>
    public List<string> Keys { get; } = [];

    public List<TensorInfo> Tensors { get; } = [];

    /// <summary>Absolute file offset of the data section.</summary>
    public long DataStart { get; private set; }

    public long Alignment { get; private set; }

    public byte[] Bytes { get; private init; } = [];

    public static GgufFile Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var f = new GgufFile { Bytes = bytes, Version = BitConverter.ToUInt32(bytes, 4) };
        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        Assert.Equal("GGUF", Encoding.ASCII.GetString(r.ReadBytes(4)));
        r.ReadUInt32();
        ulong tensorCount = r.ReadUInt64();
        ulong kvCount = r.ReadUInt64();
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = Str(r);
            uint type = r.ReadUInt32();
            uint elem = 0;
            object value;
            if (type == 9)
            {
                elem = r.ReadUInt32();
                ulong n = r.ReadUInt64();
                var items = new object[n];
                for (ulong j = 0; j < n; j++)
                {
                    items[j] = Value(r, elem);
                }

                value = items;
            }
            else
            {
                value = Value(r, type);
            }

            Assert.True(f.Metadata.TryAdd(key, value), "duplicate key " + key);
            f.MetadataTypes[key] = (type, elem);
            f.Keys.Add(key);
        }

        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = Str(r);
            uint nd = r.ReadUInt32();
            var dims = new long[nd];
            for (int d = 0; d < nd; d++)
            {
                dims[d] = (long)r.ReadUInt64();
            }

            f.Tensors.Add(new TensorInfo(name, dims, r.ReadUInt32(), r.ReadUInt64()));
        }

        f.Alignment = f.Metadata.TryGetValue("general.alignment", out var a) ? (uint)a : 32;
        long pos = r.BaseStream.Position;
        f.DataStart = (pos + f.Alignment - 1) / f.Alignment * f.Alignment;
        for (long p = pos; p < f.DataStart; p++)
        {
            Assert.Equal(0, bytes[p]);
        }

        foreach (var t in f.Tensors)
        {
            Assert.True(t.Offset % (ulong)f.Alignment == 0, $"{t.Name}: offset {t.Offset} not aligned");
            Assert.True(f.DataStart + (long)t.Offset + f.ByteSize(t) <= bytes.Length, $"{t.Name}: data beyond the end of the file");
        }

        return f;
    }

    public TensorInfo Tensor(string name) => Tensors.Single(t => t.Name == name);

    public long ByteSize(TensorInfo t)
    {
        long n = t.Dims.Aggregate(1L, (x, y) => x * y);
        return t.Type switch
        {
            0 => n * 4,
            1 => n * 2,
            8 => n / 32 * 34,
            _ => throw new NotSupportedException("ggml type " + t.Type),
        };
    }

    /// <summary>The values of <paramref name="name"/> as floats (F16 and Q8_0 decoded), row-major.</summary>
    public float[] Values(string name)
    {
        var t = Tensor(name);
        long n = t.Dims.Aggregate(1L, (x, y) => x * y);
        int at = (int)(DataStart + (long)t.Offset);
        var result = new float[n];
        for (long i = 0; i < n; i++)
        {
            result[i] = t.Type switch
            {
                0 => BitConverter.ToSingle(Bytes, at + (int)(4 * i)),
                1 => (float)BitConverter.ToHalf(Bytes, at + (int)(2 * i)),
                8 => (float)BitConverter.ToHalf(Bytes, at + (int)(i / 32 * 34)) * (sbyte)Bytes[at + (int)(i / 32 * 34) + 2 + (int)(i % 32)],
                _ => throw new NotSupportedException("ggml type " + t.Type),
            };
        }

        return result;
    }

    public T Get<T>(string key) => (T)Metadata[key];

    public string[] Strings(string key) => ((object[])Metadata[key]).Cast<string>().ToArray();

    private static string Str(BinaryReader r)
    {
        ulong n = r.ReadUInt64();
        return Encoding.UTF8.GetString(r.ReadBytes((int)n));
    }

    private static object Value(BinaryReader r, uint type) => type switch
    {
        0 => r.ReadByte(),
        1 => r.ReadSByte(),
        2 => r.ReadUInt16(),
        3 => r.ReadInt16(),
        4 => r.ReadUInt32(),
        5 => r.ReadInt32(),
        6 => r.ReadSingle(),
        7 => r.ReadByte() switch
        {
            0 => false,
            1 => true,
            var b => throw new InvalidDataException("bool byte " + b),
        },
        8 => Str(r),
        10 => r.ReadUInt64(),
        11 => r.ReadInt64(),
        12 => r.ReadDouble(),
        _ => throw new InvalidDataException("GGUF value type " + type),
    };
}
