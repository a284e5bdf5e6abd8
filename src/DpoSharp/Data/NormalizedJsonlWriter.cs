using DpoSharp.IO;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using DpoSharp.Tokenization;

namespace DpoSharp.Data;

/// <summary>
/// Writes a normalized dataset as JSON Lines, one pair per line: <c>prompt</c>, <c>chosen</c>, <c>rejected</c> as
/// strings (plus <c>system</c> when set), as <c>{role, content}</c> lists for conversational data, or
/// <c>*_input_ids</c> lists for pre-tokenized data. The file is written to a temporary file beside the target and
/// renamed into place, so a failure never leaves a partial file.
/// </summary>
public static class NormalizedJsonlWriter
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes <paramref name="examples"/> to <paramref name="path"/> (replaced if it exists).</summary>
    public static void Write(IEnumerable<PreferenceExample> examples, string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
        {
            throw new DpoSharpException($"{path}: the output folder {dir} does not exist.");
        }

        AtomicFile.Write(full, stream =>
        {
            foreach (var e in examples)
            {
                using (var w = new Utf8JsonWriter(stream, Options))
                {
                    WriteOne(w, e);
                }

                stream.WriteByte((byte)'\n');
            }
        });
    }

    /// <summary>One pair as a compact JSON object (the line <see cref="Write"/> writes).</summary>
    public static string ToJson(PreferenceExample e)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Options))
        {
            WriteOne(w, e);
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteOne(Utf8JsonWriter w, PreferenceExample e)
    {
        w.WriteStartObject();
        switch (e.Format)
        {
            case PreferenceFormat.Standard:
                if (e.System is not null)
                {
                    w.WriteString("system", e.System);
                }

                w.WriteString("prompt", e.Prompt);
                w.WriteString("chosen", e.Chosen);
                w.WriteString("rejected", e.Rejected);
                break;
            case PreferenceFormat.Conversational:
                Messages(w, "prompt", e.PromptMessages!);
                Messages(w, "chosen", e.ChosenMessages!);
                Messages(w, "rejected", e.RejectedMessages!);
                break;
            default:
                Ids(w, "prompt_input_ids", e.PromptIds!);
                Ids(w, "chosen_input_ids", e.ChosenIds!);
                Ids(w, "rejected_input_ids", e.RejectedIds!);
                break;
        }

        w.WriteEndObject();
    }

    private static void Messages(Utf8JsonWriter w, string name, IReadOnlyList<ChatMessage> messages)
    {
        w.WriteStartArray(name);
        foreach (var m in messages)
        {
            w.WriteStartObject();
            w.WriteString("role", m.Role);
            w.WriteString("content", m.Content);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void Ids(Utf8JsonWriter w, string name, IReadOnlyList<int> ids)
    {
        w.WriteStartArray(name);
        foreach (var id in ids)
        {
            w.WriteNumberValue(id);
        }

        w.WriteEndArray();
    }
}
