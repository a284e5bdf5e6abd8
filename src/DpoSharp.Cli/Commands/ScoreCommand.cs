using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DpoSharp.Models;
using DpoSharp.Scoring;

namespace DpoSharp.Cli.Commands;

/// <summary><c>dposharp score</c>: completion log-probs of pre-tokenized preference pairs.</summary>
public static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model directory (config.json + safetensors).", Required = true };
        var dataset = new Option<string>("--dataset") { Description = "JSONL with prompt_input_ids, chosen_input_ids, rejected_input_ids per line.", Required = true };
        var output = new Option<string>("--output") { Description = "Output JSONL: one {chosen_logps, rejected_logps} per input row.", Required = true };
        var batchSize = new Option<int>("--batch-size") { Description = "Pairs per forward pass.", DefaultValueFactory = _ => 4 };
        var device = DeviceOption.Create();
        var cmd = new Command("score", "Sum of completion-token log-probs (chosen and rejected) for each pre-tokenized preference pair.")
        {
            model, dataset, output, batchSize, device,
        };
        cmd.SetAction(parse =>
        {
            int bs = parse.GetValue(batchSize);
            if (bs < 1)
            {
                throw new DpoSharpException($"--batch-size must be at least 1 (got {bs}).");
            }

            var dev = DeviceOption.Resolve(parse.GetValue(device));
            var err = parse.InvocationConfiguration.Error;
            var sw = Stopwatch.StartNew();
            var dir = parse.GetValue(model)!;
            if (!Directory.Exists(dir))
            {
                throw new DpoSharpException($"{dir}: model directory not found.");
            }

            // Validate the dataset against the config before loading (possibly gigabytes of) weights.
            var pairs = PretokenizedPairs.Read(parse.GetValue(dataset)!, ModelConfig.Load(dir).VocabSize);
            using var lm = ModelLoader.Load(dir, dev);
            var scores = PreferenceScorer.Score(lm, pairs, bs);
            PretokenizedPairs.WriteScores(parse.GetValue(output)!, scores);
            err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scored {pairs.Count} pairs in {sw.Elapsed.TotalSeconds:F1} s -> {parse.GetValue(output)}"));
            return 0;
        });
        return cmd;
    }
}
