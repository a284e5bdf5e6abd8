using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>
/// Minimal safetensors reader/writer for trainer state (optimizer moments, RNG state, cached reference log-probs).
/// Tensors are written in key order with little-endian raw bytes, as the safetensors format specifies.
/// </summary>
internal static class TensorFile
{
    private const int BufferSize = 1 << 20;

    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> (copies to CPU, contiguous).</summary>
    public static void Save(string path, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is not null && metadata.Count > 0)
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata)
            {
                meta[k] = v;
            }

            header["__metadata__"] = meta;
        }

        long offset = 0;
        var cpu = new List<Tensor>(tensors.Count);
        try
        {
            foreach (var (name, t) in tensors)
            {
                var c = t.detach().cpu().contiguous();
                cpu.Add(c);
                long bytes = c.NumberOfElements * c.ElementSize;
                header[name] = new JsonObject
                {
                    ["dtype"] = DTypeName(c.dtype),
                    ["shape"] = new JsonArray(c.shape.Select(s => (JsonNode)s).ToArray()),
                    ["data_offsets"] = new JsonArray(offset, offset + bytes),
                };
                offset += bytes;
            }

            var json = Encoding.UTF8.GetBytes(header.ToJsonString());
            int padded = (json.Length + 7) / 8 * 8;
            using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, BufferSize);
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            fs.Write(len);
            fs.Write(json);
            for (int i = json.Length; i < padded; i++)
            {
                fs.WriteByte((byte)' ');
            }

            foreach (var c in cpu)
            {
                if (c.NumberOfElements > 0)
                {
                    c.WriteBytesToStream(fs, BufferSize);
                }
            }

            fs.Flush(flushToDisk: true);
        }
        finally
        {
            foreach (var c in cpu)
            {
                c.Dispose();
            }
        }
    }

    /// <summary>Reads every tensor of <paramref name="path"/> onto the CPU. The caller owns (disposes) the tensors.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize);
        Span<byte> len = stackalloc byte[8];
        fs.ReadExactly(len);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLength > 100_000_000 || (long)headerLength > fs.Length - 8)
        {
            throw new DpoSharpException($"{path}: not a safetensors file (header length {headerLength}). Delete the checkpoint and resume from an earlier one.");
        }

        var json = new byte[headerLength];
        fs.ReadExactly(json);
        var header = JsonNode.Parse(json)!.AsObject();
        long dataStart = 8 + (long)headerLength;
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                foreach (var (k, v) in node!.AsObject())
                {
                    metadata[k] = v!.GetValue<string>();
                }

                continue;
            }

            var entry = node!.AsObject();
            var dtype = ParseDType(entry["dtype"]!.GetValue<string>(), path, name);
            var shape = entry["shape"]!.AsArray().Select(s => s!.GetValue<long>()).ToArray();
            var offsets = entry["data_offsets"]!.AsArray();
            long begin = offsets[0]!.GetValue<long>();
            var t = empty(shape, dtype);
            if (t.NumberOfElements > 0)
            {
                fs.Seek(dataStart + begin, SeekOrigin.Begin);
                t.ReadBytesFromStream(fs, BufferSize);
            }

            result[name] = t.DetachFromDisposeScope();
        }

        return (result, metadata);
    }

    private static string DTypeName(ScalarType t) => t switch
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
        _ => throw new NotSupportedException($"dtype {t} cannot be written to safetensors"),
    };

    private static ScalarType ParseDType(string name, string path, string key) => name switch
    {
        "F32" => ScalarType.Float32,
        "F64" => ScalarType.Float64,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new DpoSharpException($"{path}: tensor '{key}' has unsupported dtype '{name}'."),
    };

    /// <summary>Serialises a JSON node with indentation (used for the small JSON side files).</summary>
    public static string ToJson(JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
