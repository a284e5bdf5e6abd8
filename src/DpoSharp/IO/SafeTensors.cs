using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.IO;

/// <summary>One tensor entry of a safetensors header.</summary>
/// <param name="Name">Tensor name (state-dict key).</param>
/// <param name="DType">The safetensors dtype string (F32, F64, F16, BF16, I64, I32, I8, U8, BOOL).</param>
/// <param name="ScalarType">The matching TorchSharp dtype.</param>
/// <param name="Shape">Shape (empty for a scalar).</param>
/// <param name="Begin">Start offset in the data section (bytes).</param>
/// <param name="End">End offset (exclusive) in the data section (bytes).</param>
public sealed record SafeTensorInfo(string Name, string DType, ScalarType ScalarType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes in the file.</summary>
    public long ByteLength => End - Begin;
}

/// <summary>The safetensors dtypes DpoSharp reads and writes.</summary>
public static class SafeTensorsDTypes
{
    private static readonly Dictionary<string, (ScalarType Type, int Size)> ByName = new(StringComparer.Ordinal)
    {
        ["F32"] = (ScalarType.Float32, 4),
        ["F64"] = (ScalarType.Float64, 8),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>The supported dtype strings.</summary>
    public static IReadOnlyCollection<string> Supported => ByName.Keys;

    /// <summary>TorchSharp dtype and element size of a safetensors dtype string; false when unsupported.</summary>
    public static bool TryParse(string name, out ScalarType type, out int elementSize)
    {
        if (ByName.TryGetValue(name, out var v))
        {
            type = v.Type;
            elementSize = v.Size;
            return true;
        }

        type = default;
        elementSize = 0;
        return false;
    }

    /// <summary>The safetensors dtype string of a TorchSharp dtype.</summary>
    /// <exception cref="ArgumentException">The dtype has no supported safetensors name.</exception>
    public static string NameOf(ScalarType type) => type switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float64 => "F64",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new ArgumentException($"dtype {type} cannot be written to safetensors (supported: {string.Join(", ", Supported)})"),
    };
}

/// <summary>
/// A safetensors file opened for reading: the header is parsed and validated on open (header length, JSON,
/// known dtypes, shape × element size = byte length, offsets inside the file and non-overlapping). Tensors are
/// read one at a time straight from the file into tensor memory (no second copy of the weights).
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted (100 MB, as the reference implementation).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const int CopyBufferBytes = 1 << 20;
    private readonly FileStream _stream;
    private readonly long _dataStart;

    private SafeTensorsFile(string path, FileStream stream, long dataStart, Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _stream = stream;
        _dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file path.</summary>
    public string Path { get; }

    /// <summary>Tensor entries by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="DpoSharpException">The file is missing, truncated or its header is malformed.</exception>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path))
        {
            throw new DpoSharpException($"{path}: safetensors file not found.");
        }

        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        try
        {
            long fileLength = stream.Length;
            Span<byte> lenBytes = stackalloc byte[8];
            if (fileLength < 8 || stream.ReadAtLeast(lenBytes, 8, throwOnEndOfStream: false) < 8)
            {
                throw Bad(path, $"file is {fileLength} bytes, too short for the 8-byte header length: truncated or not a safetensors file");
            }

            ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
            if (headerLen < 2 || headerLen > MaxHeaderBytes)
            {
                throw Bad(path, $"header length {headerLen} is out of range (2..{MaxHeaderBytes}): not a safetensors file or corrupt");
            }

            if ((long)headerLen > fileLength - 8)
            {
                throw Bad(path, $"header length {headerLen} exceeds the file size {fileLength}: truncated");
            }

            var headerBytes = new byte[headerLen];
            stream.ReadExactly(headerBytes);
            long dataStart = 8 + (long)headerLen;
            long dataLength = fileLength - dataStart;
            var (tensors, metadata) = ParseHeader(path, headerBytes, dataLength);
            return new SafeTensorsFile(path, stream, dataStart, tensors, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(Encoding.UTF8.GetString(header).TrimEnd(' ')) as JsonObject
                ?? throw Bad(path, "header is not a JSON object");
        }
        catch (JsonException e)
        {
            throw Bad(path, $"header is not valid JSON ({e.Message})");
        }

        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta)
                {
                    foreach (var (k, v) in meta)
                    {
                        metadata[k] = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : v?.ToJsonString() ?? "";
                    }
                }

                continue;
            }

            tensors[name] = ParseEntry(path, name, node);
        }

        foreach (var t in tensors.Values)
        {
            if (t.End > dataLength)
            {
                throw Bad(path, $"tensor '{t.Name}': data offsets [{t.Begin}, {t.End}) lie beyond the data section ({dataLength} bytes): truncated file");
            }
        }

        SafeTensorInfo? prev = null;
        foreach (var t in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (prev is not null && t.Begin < prev.End && t.ByteLength > 0 && prev.ByteLength > 0)
            {
                throw Bad(path, $"tensors '{prev.Name}' [{prev.Begin}, {prev.End}) and '{t.Name}' [{t.Begin}, {t.End}) overlap");
            }

            if (t.ByteLength > 0)
            {
                prev = t;
            }
        }

        return (tensors, metadata);
    }

    private static SafeTensorInfo ParseEntry(string path, string name, JsonNode? node)
    {
        if (node is not JsonObject o)
        {
            throw Bad(path, $"tensor '{name}': entry is not an object");
        }

        string dtype = o["dtype"] is JsonValue dv && dv.TryGetValue<string>(out var ds) ? ds
            : throw Bad(path, $"tensor '{name}': missing or non-string 'dtype'");
        if (!SafeTensorsDTypes.TryParse(dtype, out var scalar, out var size))
        {
            throw Bad(path, $"tensor '{name}': dtype '{dtype}' is not supported (supported: {string.Join(", ", SafeTensorsDTypes.Supported)})");
        }

        var shape = ReadLongs(path, name, o, "shape");
        var offsets = ReadLongs(path, name, o, "data_offsets");
        if (offsets.Length != 2)
        {
            throw Bad(path, $"tensor '{name}': 'data_offsets' must hold two numbers [begin, end]");
        }

        if (offsets[0] > offsets[1])
        {
            throw Bad(path, $"tensor '{name}': data_offsets begin {offsets[0]} is after end {offsets[1]}");
        }

        long expected;
        try
        {
            long count = 1;
            foreach (var d in shape)
            {
                count = checked(count * d);
            }

            expected = checked(count * size);
        }
        catch (OverflowException)
        {
            throw Bad(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] is too large");
        }

        if (expected != offsets[1] - offsets[0])
        {
            throw Bad(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype} needs {expected} bytes but data_offsets span {offsets[1] - offsets[0]}");
        }

        return new SafeTensorInfo(name, dtype, scalar, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadLongs(string path, string name, JsonObject o, string field)
    {
        if (o[field] is not JsonArray arr)
        {
            throw Bad(path, $"tensor '{name}': missing or non-array '{field}'");
        }

        var result = new long[arr.Count];
        for (int i = 0; i < arr.Count; i++)
        {
            if (arr[i] is not JsonValue v || !v.TryGetValue<long>(out var x) || x < 0)
            {
                throw Bad(path, $"tensor '{name}': '{field}' must hold non-negative integers");
            }

            result[i] = x;
        }

        return result;
    }

    private static DpoSharpException Bad(string path, string what) =>
        new($"{path}: invalid safetensors file: {what}. Re-download or re-save the checkpoint.");

    /// <summary>Reads tensor <paramref name="name"/> into a new CPU tensor of its stored dtype, then moves it to
    /// <paramref name="device"/> when given.</summary>
    public Tensor Read(string name, Device? device = null)
    {
        var info = Get(name);
        var t = empty(info.Shape, info.ScalarType, CPU);
        try
        {
            ReadRaw(info, t);
        }
        catch
        {
            t.Dispose();
            throw;
        }

        if (device is null || device.type == DeviceType.CPU)
        {
            return t;
        }

        var moved = t.to(device);
        t.Dispose();
        return moved;
    }

    /// <summary>
    /// Reads every tensor onto the CPU in its stored dtype. The tensors are detached from any dispose scope:
    /// the caller owns (disposes) them.
    /// </summary>
    public Dictionary<string, Tensor> ReadAll()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var name in Tensors.Keys)
            {
                result[name] = Read(name).DetachFromDisposeScope();
            }
        }
        catch
        {
            foreach (var t in result.Values)
            {
                t.Dispose();
            }

            throw;
        }

        return result;
    }

    /// <summary>
    /// Copies tensor <paramref name="name"/> into <paramref name="target"/> (same shape; dtype/device converted).
    /// When the target is a contiguous CPU tensor of the stored dtype the bytes go straight into it.
    /// </summary>
    public void ReadInto(string name, Tensor target)
    {
        var info = Get(name);
        if (!info.Shape.SequenceEqual(target.shape))
        {
            throw new DpoSharpException($"{Path}: tensor '{name}' has shape [{string.Join(", ", info.Shape)}] but the model expects [{string.Join(", ", target.shape)}]; the config.json does not match the weights.");
        }

        using var _ = no_grad();
        if (target.device_type == DeviceType.CPU && target.dtype == info.ScalarType && target.is_contiguous())
        {
            ReadRaw(info, target);
            return;
        }

        using var tmp = Read(name);
        target.copy_(tmp);
    }

    private SafeTensorInfo Get(string name) => Tensors.TryGetValue(name, out var info)
        ? info
        : throw new DpoSharpException($"{Path}: tensor '{name}' is not in the file.");

    private void ReadRaw(SafeTensorInfo info, Tensor target)
    {
        _stream.Position = _dataStart + info.Begin;
        try
        {
            target.ReadBytesFromStream(_stream, (int)Math.Min(CopyBufferBytes, Math.Max(1, info.ByteLength)));
        }
        catch (EndOfStreamException e)
        {
            throw new DpoSharpException($"{Path}: tensor '{info.Name}': the file ends before its data: truncated file. Re-download it.", e);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _stream.Dispose();
}

/// <summary>Writes safetensors files (header padded to 8 bytes, tensors in the given order).</summary>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> (via a temporary file renamed at the end).
    /// Tensors may be on any device; they are written in their own dtype.
    /// </summary>
    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        var meta = new JsonObject();
        foreach (var (k, v) in metadata ?? new Dictionary<string, string> { ["format"] = "pt" })
        {
            meta[k] = v;
        }

        header["__metadata__"] = meta;
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            long bytes = t.NumberOfElements * t.ElementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = SafeTensorsDTypes.NameOf(t.dtype),
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }

        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        var tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            fs.Write(len);
            fs.Write(json);
            for (int i = json.Length; i < padded; i++)
            {
                fs.WriteByte((byte)' ');
            }

            foreach (var (_, t) in tensors)
            {
                if (t.NumberOfElements == 0)
                {
                    continue;
                }

                using var scope = NewDisposeScope();
                var c = t.detach();
                if (c.device_type != DeviceType.CPU)
                {
                    c = c.cpu();
                }

                if (!c.is_contiguous())
                {
                    c = c.contiguous();
                }

                c.WriteBytesToStream(fs, 1 << 20);
            }

            fs.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
    }
}
