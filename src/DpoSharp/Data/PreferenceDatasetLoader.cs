using System.Text.RegularExpressions;
using DpoSharp.Data.Readers;

namespace DpoSharp.Data;

/// <summary>
/// Loads preference pairs from a file (<c>.jsonl</c>, <c>.json</c>, <c>.parquet</c>, <c>.csv</c>, <c>.tsv</c>) or a
/// Hugging Face dataset folder as downloaded (<c>data/train-00000-of-00001.parquet</c>, <c>train.jsonl</c>, ...;
/// the split comes from the file or folder names). Either the whole dataset loads, or a
/// <see cref="DpoSharpException"/> names the file and row at fault.
/// </summary>
public static partial class PreferenceDatasetLoader
{
    /// <summary>File extensions read as data.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jsonl", ".json", ".parquet", ".csv", ".tsv"];

    private static readonly HashSet<string> MetadataFiles = new(StringComparer.OrdinalIgnoreCase)
    {
        "dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json", "config.json",
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
    };

    private static readonly Dictionary<string, string> SplitAliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["train"] = "train",
        ["training"] = "train",
        ["test"] = "test",
        ["testing"] = "test",
        ["eval"] = "test",
        ["evaluation"] = "test",
        ["validation"] = "validation",
        ["valid"] = "validation",
        ["val"] = "validation",
        ["dev"] = "validation",
    };

    /// <summary>Loads, validates and normalizes the dataset at <paramref name="path"/> (a file or a folder).</summary>
    /// <exception cref="DpoSharpException">The path, a file or a row is unusable; the message says where and why.</exception>
    public static PreferenceDataset Load(string path, DatasetOptions? options = null)
    {
        options ??= new DatasetOptions();
        options.Validate();
        var (files, split, splits, notes) = ResolveFiles(path, options.Split);
        return LoadFiles(files, split, splits, options, notes);
    }

    /// <summary>
    /// The data files <paramref name="path"/> (a file or a dataset folder) holds for <paramref name="requestedSplit"/>
    /// (null: <c>train</c>, else the only split): the files, the split read (null for a single file), the folder's
    /// splits, and notes (files of another format that were ignored).
    /// </summary>
    /// <exception cref="DpoSharpException">No such path, no data files, or no such split.</exception>
    internal static (IReadOnlyList<string> Files, string? Split, IReadOnlyList<string> Splits, List<string> Notes) ResolveFiles(string path, string? requestedSplit)
    {
        if (File.Exists(path))
        {
            // A single file is its own split; --split only selects among a folder's files (or a JSON object's lists).
            return ([Path.GetFullPath(path)], null, [], []);
        }

        if (!Directory.Exists(path))
        {
            throw new DpoSharpException($"{path}: no such file or folder. Pass a .jsonl/.json/.parquet/.csv/.tsv file or a dataset folder.");
        }

        var splits = FindSplits(path);
        if (splits.Count == 0 && Directory.EnumerateFiles(path, "*.arrow", SearchOption.AllDirectories).Any())
        {
            throw new DpoSharpException(
                $"{path}: the folder holds Arrow files (a dataset written by datasets' save_to_disk), which are not read. " +
                "Export it as Parquet or JSON Lines (in Python: `ds.to_parquet(\"train.parquet\")` per split) and pass that file or folder.");
        }

        if (splits.Count == 0)
        {
            throw new DpoSharpException(
                $"{path}: the folder holds no data files ({string.Join(", ", Extensions)}), also not under data/. " +
                "Download the dataset's files (for example `huggingface-cli download --repo-type dataset NAME --local-dir DIR`).");
        }

        string split;
        if (requestedSplit is not null)
        {
            if (!splits.ContainsKey(requestedSplit))
            {
                throw new DpoSharpException($"{path}: no split '{requestedSplit}'; the folder has: {string.Join(", ", splits.Keys)}.");
            }

            split = requestedSplit;
        }
        else if (splits.ContainsKey("train"))
        {
            split = "train";
        }
        else if (splits.Count == 1)
        {
            split = splits.Keys.First();
        }
        else
        {
            throw new DpoSharpException($"{path}: several splits ({string.Join(", ", splits.Keys)}) and none is 'train'; pass --split.");
        }

        // A repository may hold the same split in several formats (e.g. JSON plus a Parquet conversion): read one.
        var files = splits[split];
        var formats = files.GroupBy(f => Path.GetExtension(f).ToLowerInvariant()).ToList();
        var notes = new List<string>();
        if (formats.Count > 1)
        {
            var used = formats.OrderBy(g => FormatPriority.IndexOf(g.Key)).First();
            notes.Add($"split '{split}' has files of several types; read the {used.Key} files and ignored " +
                string.Join(", ", formats.Where(g => g != used).Select(g => $"{g.Count()} {g.Key} file(s)")) + ".");
            files = used.ToList();
        }

        return (files, split, splits.Keys.ToArray(), notes);
    }

    private static readonly List<string> FormatPriority = [".parquet", ".jsonl", ".json", ".csv", ".tsv"];

    /// <summary>The data files of a dataset folder grouped by split name (sorted file lists).</summary>
    public static SortedDictionary<string, List<string>> FindSplits(string folder)
    {
        var root = Path.GetFullPath(folder);
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Where(f => !MetadataFiles.Contains(Path.GetFileName(f)))
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar).Any(part => part.StartsWith('.')))
            .Order(StringComparer.Ordinal)
            .ToList();
        var splits = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            var split = SplitOf(Path.GetRelativePath(root, f));
            if (!splits.TryGetValue(split, out var list))
            {
                splits[split] = list = [];
            }

            list.Add(f);
        }

        return splits;
    }

    /// <summary>The split of a data file from its name (<c>train-00000-of-00002.parquet</c> → train) or a folder in its
    /// path (<c>test/part.jsonl</c> → test); files without a split keyword belong to <c>train</c>.</summary>
    public static string SplitOf(string relativePath)
    {
        var parts = relativePath.Split(['/', '\\'], StringSplitOptions.RemoveEmptyEntries);
        var name = Path.GetFileNameWithoutExtension(parts[^1]);
        // Sharded files name their split: "<split>-00000-of-00001" (any split name, e.g. train_prefs).
        var sharded = ShardedName().Match(name);
        if (sharded.Success)
        {
            return SplitAliases.GetValueOrDefault(sharded.Groups[1].Value, sharded.Groups[1].Value);
        }

        var m = SplitWord().Match(name);
        if (m.Success && SplitAliases.TryGetValue(m.Groups[1].Value, out var split))
        {
            return split;
        }

        for (var i = parts.Length - 2; i >= 0; i--)
        {
            if (SplitAliases.TryGetValue(parts[i], out split))
            {
                return split;
            }
        }

        return "train";
    }

    private static PreferenceDataset LoadFiles(IReadOnlyList<string> files, string? split, IReadOnlyList<string> splits, DatasetOptions options, List<string> warnings)
    {
        var normalizer = new RowNormalizer(options);
        var examples = new List<PreferenceExample>();
        IReadOnlyList<string> columns = [];
        var identical = new List<string>();
        foreach (var file in files)
        {
            var rows = ReadRows(file, options, out var fileColumns);
            if (columns.Count == 0)
            {
                columns = fileColumns;
            }

            foreach (var row in rows)
            {
                var e = normalizer.Normalize(row, file);
                if (e.CompletionsIdentical)
                {
                    identical.Add(e.Where);
                }

                examples.Add(e);
            }
        }

        if (identical.Count > 0)
        {
            warnings.Add(
                $"{identical.Count} pair(s) have identical chosen and rejected completions (they teach nothing; kept): " +
                string.Join("; ", identical.Take(5)) + (identical.Count > 5 ? "; ..." : "") + ".");
        }

        return new PreferenceDataset
        {
            Examples = examples,
            Format = normalizer.Format!.Value,
            Files = files,
            Split = split,
            AvailableSplits = splits,
            Columns = columns,
            IdenticalCount = identical.Count,
            Warnings = warnings,
        };
    }

    /// <summary>The rows of one data file, by its extension (<paramref name="options"/>' split selects a JSON object's list).</summary>
    internal static List<RawRow> ReadRows(string file, DatasetOptions options, out IReadOnlyList<string> columns)
    {
        var ext = Path.GetExtension(file).ToLowerInvariant();
        List<RawRow> rows;
        switch (ext)
        {
            case ".jsonl":
                rows = JsonRowReader.ReadJsonLines(file);
                break;
            case ".json":
                rows = JsonRowReader.ReadJson(file, options.Split);
                break;
            case ".csv":
                rows = CsvRowReader.Read(file, ',');
                break;
            case ".tsv":
                rows = CsvRowReader.Read(file, '\t');
                break;
            case ".parquet":
                {
                    var (r, c) = ParquetRowReader.Read(file);
                    columns = c;
                    return r;
                }

            default:
                throw new DpoSharpException(
                    $"{file}: unknown file type '{ext}'. Supported: {string.Join(", ", Extensions)} files or a dataset folder.");
        }

        columns = rows[0].Values.Select(p => p.Key).ToArray();
        return rows;
    }

    [GeneratedRegex(@"^([A-Za-z]+)(?=$|[-_.0-9 ])")]
    private static partial Regex SplitWord();

    [GeneratedRegex(@"^([A-Za-z][A-Za-z0-9_]*)-\d{5}-of-\d{5}")]
    private static partial Regex ShardedName();
}
