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
                if (!File.Exists(path))
                {
                    throw new DpoSharpException($"--file: '{path}' does not exist.");
                }

                inputs = File.ReadLines(path, System.Text.Encoding.UTF8);
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
}
