using System.Text;

namespace DpoSharp.IO.Gguf;

/// <summary>One GGUF metadata entry: a key, its type and its value (an array's element type in
/// <paramref name="ElementType"/>).</summary>
/// <param name="Key">The key, e.g. <c>llama.block_count</c>.</param>
/// <param name="Type">The value type.</param>
/// <param name="Value">uint, int, float, bool, string, ulong, or for arrays a string[], float[], int[] or uint[].</param>
/// <param name="ElementType">The element type of an array (ignored otherwise).</param>
public sealed record GgufMetadata(string Key, GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8);

/// <summary>One tensor to write: its GGUF name, its shape in PyTorch order (outermost first; GGUF stores the
/// reverse), its ggml type and a function producing its bytes (called once, while the file is written).</summary>
/// <param name="Name">The GGUF name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Shape">The shape, outermost dimension first.</param>
/// <param name="Type">The stored type.</param>
/// <param name="Data">Produces exactly <see cref="GgmlQuantization.ByteSize"/> bytes.</param>
public sealed record GgufTensor(string Name, long[] Shape, GgmlType Type, Func<byte[]> Data)
{
    /// <summary>Number of values.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of the stored data.</summary>
    public long ByteSize => GgmlQuantization.ByteSize(Type, Elements);
}

/// <summary>
/// Writes a GGUF v3 file (ggml's <c>docs/gguf.md</c>): the magic <c>GGUF</c>, version 3, tensor and metadata counts,
/// the metadata key/values, the tensor infos (name, dimensions innermost first, type, offset into the data
/// section), padding to <see cref="Alignment"/>, then each tensor's data, each starting at a multiple of
/// <see cref="Alignment"/>. Little-endian throughout.
/// </summary>
public sealed class GgufWriter
{
    /// <summary>The GGUF version written.</summary>
    public const uint Version = 3;

    /// <summary>The default data alignment (<c>general.alignment</c>).</summary>
    public const int DefaultAlignment = 32;

    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;

    private readonly List<GgufMetadata> _metadata = [];
    private readonly List<GgufTensor> _tensors = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Creates a writer; <paramref name="alignment"/> is recorded as <c>general.alignment</c>.</summary>
    public GgufWriter(int alignment = DefaultAlignment)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(alignment, 1);
        if ((alignment & (alignment - 1)) != 0)
        {
            throw new ArgumentException("the alignment must be a power of two", nameof(alignment));
        }

        Alignment = alignment;
        AddUInt32("general.alignment", (uint)alignment);
    }

    /// <summary>The data alignment in bytes.</summary>
    public int Alignment { get; }

    /// <summary>The metadata added so far, in order.</summary>
    public IReadOnlyList<GgufMetadata> Metadata => _metadata;

    /// <summary>The tensors added so far, in order.</summary>
    public IReadOnlyList<GgufTensor> Tensors => _tensors;

    /// <summary>Adds a u32 value.</summary>
    public void AddUInt32(string key, uint value) => Add(new(key, GgufValueType.UInt32, value));

    /// <summary>Adds an i32 value.</summary>
    public void AddInt32(string key, int value) => Add(new(key, GgufValueType.Int32, value));

    /// <summary>Adds an f32 value.</summary>
    public void AddFloat32(string key, float value) => Add(new(key, GgufValueType.Float32, value));

    /// <summary>Adds a bool value.</summary>
    public void AddBool(string key, bool value) => Add(new(key, GgufValueType.Bool, value));

    /// <summary>Adds a string value.</summary>
    public void AddString(string key, string value) => Add(new(key, GgufValueType.String, value));

    /// <summary>Adds an array of strings.</summary>
    public void AddStringArray(string key, IReadOnlyList<string> values) => Add(new(key, GgufValueType.Array, values.ToArray(), GgufValueType.String));

    /// <summary>Adds an array of f32.</summary>
    public void AddFloat32Array(string key, IReadOnlyList<float> values) => Add(new(key, GgufValueType.Array, values.ToArray(), GgufValueType.Float32));

    /// <summary>Adds an array of i32.</summary>
    public void AddInt32Array(string key, IReadOnlyList<int> values) => Add(new(key, GgufValueType.Array, values.ToArray(), GgufValueType.Int32));

    /// <summary>Adds a metadata entry.</summary>
    /// <exception cref="ArgumentException">The key was added before.</exception>
    public void Add(GgufMetadata entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!_keys.Add(entry.Key))
        {
            throw new ArgumentException($"GGUF metadata key '{entry.Key}' added twice", nameof(entry));
        }

        _metadata.Add(entry);
    }

    /// <summary>Adds a tensor.</summary>
    /// <exception cref="ArgumentException">The name was added before, or Q8_0 rows are not whole blocks.</exception>
    public void AddTensor(GgufTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!_names.Add(tensor.Name))
        {
            throw new ArgumentException($"GGUF tensor '{tensor.Name}' added twice", nameof(tensor));
        }

        if (tensor.Shape.Length is 0 or > 4 || !GgmlQuantization.Fits(tensor.Type, tensor.Shape[^1]))
        {
            throw new ArgumentException($"GGUF tensor '{tensor.Name}' of shape [{string.Join(", ", tensor.Shape)}] cannot be stored as {tensor.Type}", nameof(tensor));
        }

        _tensors.Add(tensor);
    }

    /// <summary>Writes the file to <paramref name="stream"/> (from its current position).</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(Magic);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var m in _metadata)
        {
            WriteString(w, m.Key);
            w.Write((uint)m.Type);
            WriteValue(w, m.Type, m.Value, m.ElementType);
        }

        long offset = 0;
        foreach (var t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Shape.Length);
            for (int d = t.Shape.Length - 1; d >= 0; d--)
            {
                w.Write((ulong)t.Shape[d]);
            }

            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset = Align(offset + t.ByteSize);
        }

        w.Flush();
        Pad(w, stream.Position);
        foreach (var t in _tensors)
        {
            var bytes = t.Data();
            if (bytes.LongLength != t.ByteSize)
            {
                throw new InvalidOperationException($"GGUF tensor '{t.Name}': {bytes.LongLength} bytes produced, {t.ByteSize} expected");
            }

            w.Write(bytes);
            Pad(w, bytes.LongLength);
        }

        w.Flush();
    }

    /// <summary><paramref name="n"/> rounded up to a multiple of <see cref="Alignment"/>.</summary>
    public long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    /// <summary>Zero bytes up to the next multiple of <see cref="Alignment"/> after <paramref name="written"/> bytes.</summary>
    private void Pad(BinaryWriter w, long written)
    {
        for (long i = Align(written) - written; i > 0; i--)
        {
            w.Write((byte)0);
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValueType type, object value, GgufValueType elementType)
    {
        switch (type)
        {
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            case GgufValueType.Float64: w.Write((double)value); break;
            case GgufValueType.Array:
                var items = (Array)value;
                w.Write((uint)elementType);
                w.Write((ulong)items.Length);
                foreach (var item in items)
                {
                    WriteValue(w, elementType, item!, GgufValueType.UInt8);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "unsupported GGUF value type");
        }
    }
}
