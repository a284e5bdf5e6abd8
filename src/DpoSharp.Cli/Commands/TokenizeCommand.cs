using System.CommandLine;
using System.Globalization;
using DpoSharp.Tokenization;

namespace DpoSharp.Cli.Commands;

/// <summary><c>dposharp tokenize</c>: token ids of text, one line per input, with a model directory's tokenizer.</summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model")
        {
            Description = "Model directory holding the tokenizer (tokenizer.json, or tokenizer.model, or vocab.json + merges.txt, or encoder.json + vocab.bpe; tokenizer_config.json optional).",
            Required = true,
        };
        var text = new Option<string[]>("--text")
        {
            Description = "Text to tokenize (repeatable: one output line per --text).",
        };
        var file = new Option<string>("--file")
        {
            Description = "UTF-8 text file: each line is one input, one output line per input line.",
        };
        var addSpecial = new Option<bool>("--add-special-tokens")
        {
            Description = "Add the model's special tokens (BOS for Llama-2/Mistral, none for GPT-2/Phi-2).",
        };
        var cmd = new Command("tokenize", "Print the token ids of each input, space-separated, one line per input.")
        {
            model, text, file, addSpecial,
        };
        cmd.SetAction(parse =>
        {
            var texts = parse.GetValue(text) ?? [];
            var path = parse.GetValue(file);
            if (texts.Length == 0 && path is null)
            {
                throw new DpoSharpException("tokenize needs --text TEXT or --file FILE.");
            }

            if (texts.Length > 0 && path is not null)
            {
                throw new DpoSharpException("tokenize takes --text or --file, not both.");
            }

            IEnumerable<string> inputs = texts;
            if (path is not null)
            {
                if (Directory.Exists(path))
                {
                    throw new DpoSharpException($"--file: '{path}' is a folder; give a text file with one input per line.");
                }

                if (!File.Exists(path))
                {
                    throw new DpoSharpException($"--file: '{path}' does not exist.");
                }

                inputs = ReadLinesStrict(path);
            }

            var tokenizer = HfTokenizer.Load(parse.GetValue(model)!);
            var output = parse.InvocationConfiguration.Output;
            var special = parse.GetValue(addSpecial);
            foreach (var input in inputs)
            {
                var ids = tokenizer.Encode(input, special);
                output.WriteLine(string.Join(' ', ids.Select(i => i.ToString(CultureInfo.InvariantCulture))));
            }

            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// The lines of a UTF-8 text file (a BOM is skipped, CRLF accepted). Invalid UTF-8 is an error naming the line
    /// and byte offset, instead of silently tokenizing U+FFFD replacement characters.
    /// </summary>
    internal static IReadOnlyList<string> ReadLinesStrict(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        string text;
        try
        {
            text = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, start, bytes.Length - start);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            int offset = start + Math.Max(0, e.Index);
            int line = 1 + bytes.Take(offset).Count(b => b == (byte)'\n');
            throw new DpoSharpException($"--file {path} line {line}: invalid UTF-8 at byte offset {offset}. Save the file as UTF-8 (for example `iconv -f latin1 -t utf-8`).");
        }

        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);                      // the newline ending the last line
        }

        return lines;
    }
}
