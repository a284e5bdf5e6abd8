using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DpoSharp.Generation;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Tokenization;

namespace DpoSharp.Cli.Commands;

/// <summary><c>dposharp generate</c>: continue a prompt with a model (greedy or sampled, KV-cached), optionally with a
/// PEFT LoRA adapter loaded into it (<c>--adapter</c>).</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model directory (config.json, safetensors, tokenizer.json).", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text.", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 = greedy.", DefaultValueFactory = _ => 0.0 };
        var topK = new Option<int>("--top-k") { Description = "Sample from the K most likely tokens; 0 = off.", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass; 1 = off.", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long>("--seed") { Description = "Random seed for sampling.", DefaultValueFactory = _ => 0 };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Do not add the tokenizer's special tokens (e.g. BOS) to the prompt." };
        var device = DeviceOption.Create();
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) loaded into --model: generate with the base plus the adapter." };
        var cmd = new Command("generate", "Continue a prompt with a model: greedy (default) or sampling with temperature, top-k, top-p; stops at EOS.")
        {
            model, prompt, maxNew, temperature, topK, topP, seed, noSpecial, device, adapter,
        };
        cmd.SetAction(parse =>
        {
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew),
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed),
            };
            options.Validate();
            var dev = DeviceOption.Resolve(parse.GetValue(device));
            var dir = parse.GetValue(model)!;
            var adapterDir = parse.GetValue(adapter);
            if (adapterDir is not null)
            {
                _ = PeftAdapter.ReadConfig(adapterDir); // before loading the weights
            }

            var tokenizer = HfTokenizer.Load(dir);
            using var lm = ModelLoader.Load(dir, dev);
            if (adapterDir is not null)
            {
                PeftAdapter.Load(lm, adapterDir);
            }

            var ids = tokenizer.Encode(parse.GetValue(prompt)!, addSpecialTokens: !parse.GetValue(noSpecial));
            var stops = lm.Config.EosTokenIds.ToHashSet();
            if (tokenizer.EosTokenId is int eos)
            {
                stops.Add(eos);
            }

            var sw = Stopwatch.StartNew();
            var generated = TextGenerator.Generate(lm, ids, new GenerationOptions
            {
                MaxNewTokens = options.MaxNewTokens,
                Temperature = options.Temperature,
                TopK = options.TopK,
                TopP = options.TopP,
                Seed = options.Seed,
                StopTokenIds = stops.ToArray(),
            });
            var output = parse.InvocationConfiguration.Output;
            // Models often have more embedding rows than the tokenizer has tokens (e.g. phi-2: 51200 vs 50295);
            // ids without a token have no text.
            var decodable = generated.Where(t => t < tokenizer.VocabSize).ToList();
            output.WriteLine(tokenizer.Decode(decodable, skipSpecialTokens: true));
            double secs = sw.Elapsed.TotalSeconds;
            if (decodable.Count < generated.Count)
            {
                parse.InvocationConfiguration.Error.WriteLine($"{generated.Count - decodable.Count} generated id(s) beyond the tokenizer's {tokenizer.VocabSize} tokens were left out of the text");
            }

            parse.InvocationConfiguration.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{ids.Count} prompt tokens, {generated.Count} new tokens in {secs:F2} s ({generated.Count / Math.Max(secs, 1e-9):F1} tokens/s)"));
            return 0;
        });
        return cmd;
    }
}
