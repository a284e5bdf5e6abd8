using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using DpoSharp.IO;

namespace DpoSharp.Training.Engine;

public static partial class Checkpointer
{
    /// <summary>Name of the checkpoint manifest: size and SHA-256 of every other file, written last.</summary>
    public const string ManifestFile = "checkpoint_manifest.json";

    /// <summary>Writes <see cref="ManifestFile"/> into checkpoint folder <paramref name="dir"/>: every file in it
    /// (recursively) with its size and SHA-256. Call when every other file is written.</summary>
    public static void WriteManifest(string dir)
    {
        var files = new JsonObject();
        foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var rel = Path.GetRelativePath(dir, file).Replace('\\', '/');
            if (rel == ManifestFile)
            {
                continue;
            }

            files[rel] = new JsonObject { ["size"] = new FileInfo(file).Length, ["sha256"] = Sha256(file) };
        }

        var manifest = new JsonObject { ["version"] = 1, ["algorithm"] = "sha256", ["files"] = files };
        var tmp = Path.Combine(dir, ManifestFile + ".partial");
        File.WriteAllText(tmp, ToIndentedJson(manifest));
        File.Move(tmp, Path.Combine(dir, ManifestFile), overwrite: true);
    }

    /// <summary>
    /// Null when checkpoint <paramref name="dir"/> verifies against its manifest, else why not (a missing manifest,
    /// a missing file, a size or — with <paramref name="checksums"/> — a SHA-256 that differs). A checkpoint
    /// written before manifests existed (no manifest, but a trainer state) verifies.
    /// </summary>
    public static string? Verify(string dir, bool checksums = true)
    {
        var manifestPath = Path.Combine(dir, ManifestFile);
        if (!File.Exists(manifestPath))
        {
            // Checkpoints of earlier versions have no manifest: complete when trainer_state.json (written last) exists.
            return File.Exists(Path.Combine(dir, TrainerStateFile))
                ? null
                : $"incomplete: it has no {ManifestFile}";
        }

        JsonObject files;
        try
        {
            files = JsonFile.Object(JsonFile.ParseObject(manifestPath)["files"], manifestPath, "files");
        }
        catch (DpoSharpException e)
        {
            return "its manifest is unreadable (" + e.Message + ")";
        }

        foreach (var (rel, node) in files)
        {
            var path = Path.Combine(dir, rel);
            if (!File.Exists(path))
            {
                return $"{rel} is missing";
            }

            long size;
            string sha;
            try
            {
                var entry = JsonFile.Object(node, manifestPath);
                size = JsonFile.Value<long>(entry["size"], manifestPath);
                sha = JsonFile.Value<string>(entry["sha256"], manifestPath);
            }
            catch (DpoSharpException e)
            {
                return "its manifest is unreadable (" + e.Message + ")";
            }

            long actual = new FileInfo(path).Length;
            if (actual != size)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{rel} has {actual} bytes, the manifest says {size} (truncated or changed)");
            }

            if (checksums && !string.Equals(Sha256(path), sha, StringComparison.OrdinalIgnoreCase))
            {
                return $"{rel} does not match its SHA-256 in the manifest (corrupted or changed)";
            }
        }

        return null;
    }

    /// <summary>
    /// Checks checkpoint <paramref name="dir"/> named by <c>resume_from_checkpoint</c> as the automatic resume checks
    /// the newest one: it must exist, hold a trainer state and verify against its manifest (sizes and SHA-256).
    /// Returns null, or a warning for a checkpoint written before manifests existed (no manifest: its files cannot be
    /// verified, and it is used as it is).
    /// </summary>
    /// <exception cref="DpoSharpException">No such folder, an incomplete checkpoint, or a file that differs from the
    /// manifest; the message names the file and suggests the newest earlier checkpoint that verifies.</exception>
    public static string? CheckResumable(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (!Directory.Exists(dir))
        {
            throw new DpoSharpException($"resume_from_checkpoint: {dir} does not exist.{Suggestion(dir)}");
        }

        if (!File.Exists(Path.Combine(dir, TrainerStateFile)))
        {
            throw new DpoSharpException($"resume_from_checkpoint: {dir} is not a complete checkpoint ({TrainerStateFile} is missing: the run stopped while writing it).{Suggestion(dir)}");
        }

        if (!File.Exists(Path.Combine(dir, ManifestFile)))
        {
            return $"{dir} has no {ManifestFile} (written before checkpoints carried one): its files cannot be verified; resuming from it as it is.";
        }

        if (Verify(dir) is { } why)
        {
            throw new DpoSharpException($"resume_from_checkpoint: {dir} does not verify against its {ManifestFile}: {why}.{Suggestion(dir)}");
        }

        return null;
    }

    /// <summary>" Resume from …" naming the newest checkpoint next to <paramref name="dir"/> with a smaller step that
    /// verifies, or what to do when there is none.</summary>
    private static string Suggestion(string dir)
    {
        var full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full);
        var m = CheckpointName().Match(Path.GetFileName(full));
        long step = m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : long.MaxValue;
        var previous = parent is null || !Directory.Exists(parent) ? null : Directory.EnumerateDirectories(parent, "checkpoint-*")
            .Select(d => (Dir: d, Match: CheckpointName().Match(Path.GetFileName(d))))
            .Where(x => x.Match.Success)
            .Select(x => (x.Dir, Step: long.Parse(x.Match.Groups[1].Value, CultureInfo.InvariantCulture)))
            .Where(x => x.Step < step && !string.Equals(Path.GetFullPath(x.Dir), full, StringComparison.Ordinal))
            .OrderByDescending(x => x.Step)
            .Select(x => x.Dir)
            .FirstOrDefault(d => File.Exists(Path.Combine(d, TrainerStateFile)) && Verify(d) is null);
        return previous is null
            ? " No earlier checkpoint next to it verifies; start a fresh run (or restore the checkpoint's files)."
            : $" Resume from the previous checkpoint instead: --resume-from-checkpoint {previous}";
    }

    /// <summary>Deletes the <c>checkpoint-*.tmp</c> folders under <paramref name="outputDir"/>: what a run that
    /// stopped while writing a checkpoint left (one run per folder, so none is being written).</summary>
    public static void RemoveStaleTemporaryFolders(string outputDir)
    {
        if (!Directory.Exists(outputDir))
        {
            return;
        }

        foreach (var dir in Directory.EnumerateDirectories(outputDir, "checkpoint-*.tmp"))
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string Sha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
