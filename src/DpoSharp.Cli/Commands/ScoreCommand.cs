using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DpoSharp.Losses;
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
        var refModel = new Option<string?>("--ref-model") { Description = "Reference model directory: rows also get ref_chosen_logps, ref_rejected_logps, chosen_reward, rejected_reward and loss (each row scored alone)." };
        var lossType = new Option<string>("--loss-type") { Description = "Loss for the per-row loss (needs --ref-model); batch-independent losses only.", DefaultValueFactory = _ => "sigmoid" };
        var beta = new Option<double>("--beta") { Description = "β of the per-row loss and rewards.", DefaultValueFactory = _ => 0.1 };
        var labelSmoothing = new Option<double>("--label-smoothing") { Description = "Label smoothing of the per-row loss (cDPO, robust, exo_pair).", DefaultValueFactory = _ => 0.0 };
        var cmd = new Command("score", "Sum of completion-token log-probs (chosen and rejected) for each pre-tokenized preference pair; with --ref-model also reference log-probs, rewards and the loss.")
        {
            model, dataset, output, batchSize, device, refModel, lossType, beta, labelSmoothing,
        };
        cmd.SetAction(parse =>
        {
            int bs = parse.GetValue(batchSize);
            if (bs < 1)
            {
                throw new DpoSharpException($"--batch-size must be at least 1 (got {bs}).");
            }

            var dev = DeviceOption.Resolve(parse.GetValue(device));
            var refDir = parse.GetValue(refModel);
            CombinedPreferenceLoss? loss = null;
            if (refDir is null)
            {
                foreach (var o in new Option[] { lossType, beta, labelSmoothing })
                {
                    if (parse.GetResult(o) is { Implicit: false })
                    {
                        throw new DpoSharpException($"{o.Name} needs --ref-model: the loss and rewards compare the model with a reference.");
                    }
                }
            }
            else
            {
                var types = parse.GetValue(lossType)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                double b = parse.GetValue(beta);
                if (!(b > 0) || !double.IsFinite(b))
                {
                    throw new DpoSharpException($"--beta must be a positive number (got {b}).");
                }

                PairLossScorer.RequireBatchIndependent(types);
                loss = PreferenceLosses.Create(types, null, new LossOptions { LabelSmoothing = parse.GetValue(labelSmoothing) });
            }

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
            IReadOnlyList<PairLossScore>? losses = null;
            if (refDir is not null)
            {
                using var reference = ModelLoader.Load(refDir, dev);
                if (reference.Config.VocabSize != lm.Config.VocabSize)
                {
                    throw new DpoSharpException($"{refDir}: the reference model's vocabulary ({reference.Config.VocabSize}) differs from the model's ({lm.Config.VocabSize}); use a reference with the same tokenizer.");
                }

                var refScores = PreferenceScorer.Score(reference, pairs, bs);
                losses = PairLossScorer.Compute(scores, refScores, loss!, parse.GetValue(beta));
            }

            PretokenizedPairs.WriteScores(parse.GetValue(output)!, scores, losses);
            loss?.Dispose();
            err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scored {pairs.Count} pairs in {sw.Elapsed.TotalSeconds:F1} s -> {parse.GetValue(output)}"));
            return 0;
        });
        return cmd;
    }
}
