using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DpoSharp.IO;

/// <summary>
/// The weights of a Hugging Face checkpoint directory: <c>model.safetensors</c>, or the shards listed in
/// <c>model.safetensors.index.json</c>. Shards are opened lazily and kept open until disposed.
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    /// <summary>Name of the single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>Name of the shard index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly Dictionary<string, SafeTensorsFile> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _fileOf;

    private SafeTensorsCheckpoint(string directory, Dictionary<string, string> fileOf)
    {
        Directory = directory;
        _fileOf = fileOf;
    }

    /// <summary>The checkpoint directory.</summary>
    public string Directory { get; }

    /// <summary>All tensor names.</summary>
    public IReadOnlyCollection<string> Names => _fileOf.Keys;

    /// <summary>Opens the checkpoint in <paramref name="directory"/> (index file preferred when present).</summary>
    /// <exception cref="DpoSharpException">No weights, a malformed index or shard.</exception>
    public static SafeTensorsCheckpoint Open(string directory)
    {
        var index = Path.Combine(directory, IndexFileName);
        var single = Path.Combine(directory, SingleFileName);
        var fileOf = new Dictionary<string, string>(StringComparer.Ordinal);
        if (File.Exists(index))
        {
            var root = JsonFile.Parse(index) as JsonObject;

            if (root?["weight_map"] is not JsonObject map)
            {
                throw new DpoSharpException($"{index}: missing the 'weight_map' object (tensor name -> shard file).");
            }

            foreach (var (name, node) in map)
            {
                if (node is not JsonValue v || !v.TryGetValue<string>(out var file) || file.Contains('/') || file.Contains('\\') || file.Length == 0)
                {
                    throw new DpoSharpException($"{index}: weight_map['{name}'] must be a shard file name in the same directory.");
                }

                fileOf[name] = file;
            }

            var result = new SafeTensorsCheckpoint(directory, fileOf);
            try
            {
                foreach (var file in fileOf.Values.Distinct())
                {
                    if (!File.Exists(Path.Combine(directory, file)))
                    {
                        throw new DpoSharpException($"{index}: weight_map names the shard {file}, which is not in {directory}; download the missing shard or fix the index.");
                    }

                    var f = result.OpenFile(file);
                    foreach (var (name, shardFile) in fileOf)
                    {
                        if (shardFile == file && !f.Tensors.ContainsKey(name))
                        {
                            throw new DpoSharpException($"{index}: weight_map puts '{name}' in {file}, but that shard does not hold it.");
                        }
                    }
                }
            }
            catch
            {
                result.Dispose();
                throw;
            }

            return result;
        }

        if (File.Exists(single))
        {
            var result = new SafeTensorsCheckpoint(directory, fileOf);
            try
            {
                foreach (var name in result.OpenFile(SingleFileName).Tensors.Keys)
                {
                    fileOf[name] = SingleFileName;
                }
            }
            catch
            {
                result.Dispose();
                throw;
            }

            return result;
        }

        throw new DpoSharpException($"{directory}: no {SingleFileName} or {IndexFileName}. Point --model at a Hugging Face checkpoint directory with safetensors weights (PyTorch .bin files are not supported).");
    }

    private SafeTensorsFile OpenFile(string file)
    {
        if (!_files.TryGetValue(file, out var f))
        {
            f = SafeTensorsFile.Open(Path.Combine(Directory, file));
            _files[file] = f;
        }

        return f;
    }

    /// <summary>Whether the checkpoint holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _fileOf.ContainsKey(name);

    /// <summary>Header entry of <paramref name="name"/>.</summary>
    public SafeTensorInfo Info(string name) => OpenFile(FileOf(name)).Tensors[name];

    /// <summary>Reads <paramref name="name"/> into a new tensor (stored dtype).</summary>
    public Tensor Read(string name, Device? device = null) => OpenFile(FileOf(name)).Read(name, device);

    /// <summary>Copies <paramref name="name"/> into <paramref name="target"/> (see <see cref="SafeTensorsFile.ReadInto"/>).</summary>
    public void ReadInto(string name, Tensor target) => OpenFile(FileOf(name)).ReadInto(name, target);

    private string FileOf(string name) => _fileOf.TryGetValue(name, out var f)
        ? f
        : throw new DpoSharpException($"{Directory}: the checkpoint has no tensor '{name}'.");

    /// <summary>
    /// Writes <paramref name="tensors"/> into <paramref name="directory"/>: one <c>model.safetensors</c> when the
    /// total fits in <paramref name="maxShardBytes"/>, else <c>model-0000i-of-0000n.safetensors</c> shards plus
    /// <c>model.safetensors.index.json</c>. Stale weight files from an earlier save are removed.
    /// </summary>
    public static void Write(string directory, IReadOnlyList<(string Name, Tensor Tensor)> tensors, long maxShardBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxShardBytes, 1);
        System.IO.Directory.CreateDirectory(directory);
        var shards = new List<List<(string, Tensor)>> { new() };
        long current = 0, total = 0;
        foreach (var (name, t) in tensors)
        {
            long bytes = t.NumberOfElements * t.ElementSize;
            if (current > 0 && current + bytes > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }

            shards[^1].Add((name, t));
            current += bytes;
            total += bytes;
        }

        foreach (var stale in System.IO.Directory.EnumerateFiles(directory, "model*.safetensors").Append(Path.Combine(directory, IndexFileName)))
        {
            if (File.Exists(stale))
            {
                File.Delete(stale);
            }
        }

        if (shards.Count == 1)
        {
            SafeTensorsWriter.Write(Path.Combine(directory, SingleFileName), shards[0]);
            return;
        }

        var map = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            var file = string.Format(CultureInfo.InvariantCulture, "model-{0:D5}-of-{1:D5}.safetensors", i + 1, shards.Count);
            SafeTensorsWriter.Write(Path.Combine(directory, file), shards[i]);
            foreach (var (name, _) in shards[i])
            {
                map[name] = file;
            }
        }

        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = total },
            ["weight_map"] = map,
        };
        File.WriteAllText(Path.Combine(directory, IndexFileName), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var f in _files.Values)
        {
            f.Dispose();
        }

        _files.Clear();
    }
}
