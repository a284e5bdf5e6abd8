using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using DpoSharp.Scoring;
using DpoSharp.Tokenization;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>dposharp score</c>: completion log-probs of preference pairs. The dataset is anything <c>dposharp data</c> reads
/// (JSONL/JSON/Parquet/CSV/TSV or a dataset folder; standard, implicit-prompt, conversational or pre-tokenized rows).
/// Text is tokenized with the model directory's tokenizer exactly as for training (TRL semantics and default limits);
/// pre-tokenized rows are used as given (no truncation unless a limit flag is passed). The output has one JSON object
/// per input row, in input order, with the row's <c>index</c>; a row that truncation leaves without a completion
/// token keeps its line with <c>dropped</c> (the reason) and null scores. With <c>--adapter</c> the model is the base
/// plus a PEFT LoRA adapter; its reference can then be the same base with the adapter disabled
/// (<c>--ref-adapters-disabled</c>), as in a LoRA training run.
/// </summary>
public static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model directory (config.json + safetensors; its tokenizer tokenizes text datasets).", Required = true };
        var common = new DatasetCliOptions(
            "Preference dataset: .jsonl, .json, .parquet, .csv, .tsv or a Hugging Face dataset folder; standard, implicit-prompt, conversational or pre-tokenized (prompt_input_ids, chosen_input_ids, rejected_input_ids) rows.",
            " Pre-tokenized data: no limit unless given.");
        var output = new Option<string>("--output") { Description = "Output JSONL: one {index, chosen_logps, rejected_logps, ...} per input row, in input order (dropped rows: a 'dropped' reason and null scores).", Required = true };
        var batchSize = new Option<int>("--batch-size") { Description = "Pairs per forward pass.", DefaultValueFactory = _ => 4 };
        var device = DeviceOption.Create();
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) loaded into --model: scores are those of the base plus the adapter." };
        var refAdaptersDisabled = new Option<bool>("--ref-adapters-disabled") { Description = "With --adapter: the reference is --model with the adapter disabled (the base), as in a LoRA training run; rows get the reference columns and loss as with --ref-model." };
        var refModel = new Option<string?>("--ref-model") { Description = "Reference model directory: rows also get ref_chosen_logps, ref_rejected_logps, chosen_reward, rejected_reward and loss (each row scored alone)." };
        var lossType = new Option<string>("--loss-type") { Description = "Loss for the per-row loss (needs --ref-model or --ref-adapters-disabled, except the reference-free orpo, simpo, cpo); batch-independent losses only.", DefaultValueFactory = _ => "sigmoid" };
        var beta = new Option<double>("--beta") { Description = "β of the per-row loss and rewards.", DefaultValueFactory = _ => 0.1 };
        var labelSmoothing = new Option<double>("--label-smoothing") { Description = "Label smoothing of the per-row loss (cDPO, robust, exo_pair).", DefaultValueFactory = _ => 0.0 };
        var simpoGamma = new Option<double>("--simpo-gamma") { Description = "Target reward margin γ of simpo.", DefaultValueFactory = _ => 0.5 };
        var cpoAlpha = new Option<double>("--cpo-alpha") { Description = "Weight of the chosen NLL of cpo and simpo.", DefaultValueFactory = _ => 1.0 };
        var cmd = new Command("score", "Sum of completion-token log-probs (chosen and rejected) for each preference pair of a dataset (with --adapter: of the base plus a LoRA adapter); with --ref-model or --ref-adapters-disabled also reference log-probs, rewards and the loss.");
        foreach (var o in new Option[] { model }.Concat(common.DatasetFlags).Concat(common.TokenizationFlags)
            .Concat([output, batchSize, device, adapter, refModel, refAdaptersDisabled, lossType, beta, labelSmoothing, simpoGamma, cpoAlpha]))
        {
            cmd.Options.Add(o);
        }

        cmd.SetAction(parse =>
        {
            int bs = parse.GetValue(batchSize);
            if (bs < 1)
            {
                throw new DpoSharpException($"--batch-size must be at least 1 (got {bs}).");
            }

            var dev = DeviceOption.Resolve(parse.GetValue(device));
            var refDir = parse.GetValue(refModel);
            var adapterDir = parse.GetValue(adapter);
            bool baseAsReference = parse.GetValue(refAdaptersDisabled);
            if (baseAsReference && adapterDir is null)
            {
                throw new DpoSharpException("--ref-adapters-disabled needs --adapter: the reference is the model with its adapter disabled.");
            }

            if (baseAsReference && refDir is not null)
            {
                throw new DpoSharpException("--ref-adapters-disabled and --ref-model both name the reference; pass one of them.");
            }

            CombinedPreferenceLoss? loss = null;
            var types = parse.GetValue(lossType)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            bool referenceFree = types.Length > 0 && types.All(LossTypes.ReferenceFreeLosses.Contains);
            if (referenceFree && (refDir is not null || baseAsReference))
            {
                throw new DpoSharpException($"--loss-type {string.Join(",", types)} uses no reference model; remove --ref-model / --ref-adapters-disabled.");
            }

            if (refDir is null && !baseAsReference && !referenceFree)
            {
                foreach (var o in new Option[] { lossType, beta, labelSmoothing, simpoGamma, cpoAlpha })
                {
                    if (parse.GetResult(o) is { Implicit: false })
                    {
                        throw new DpoSharpException($"{o.Name} needs --ref-model (or --adapter with --ref-adapters-disabled): the loss and rewards compare the model with a reference.");
                    }
                }
            }
            else
            {
                double b = parse.GetValue(beta);
                if (!(b > 0) || !double.IsFinite(b))
                {
                    throw new DpoSharpException($"--beta must be a positive number (got {b}).");
                }

                PairLossScorer.RequireBatchIndependent(types);
                loss = PreferenceLosses.Create(types, null, new LossOptions
                {
                    LabelSmoothing = parse.GetValue(labelSmoothing),
                    SimpoGamma = parse.GetValue(simpoGamma),
                    CpoAlpha = parse.GetValue(cpoAlpha),
                });
            }

            var err = parse.InvocationConfiguration.Error;
            var sw = Stopwatch.StartNew();
            var dir = parse.GetValue(model)!;
            if (!Directory.Exists(dir))
            {
                throw new DpoSharpException($"{dir}: model directory not found.");
            }

            // Read, tokenize and validate the dataset against the config before loading (possibly gigabytes of) weights.
            DpoSharpCli.CheckOutputFile("--output", parse.GetValue(output)!, parse.GetValue(common.Dataset));
            var config = ModelConfig.Load(dir);
            if (adapterDir is not null)
            {
                _ = PeftAdapter.ReadConfig(adapterDir);
            }

            var datasetOptions = common.GetDatasetOptions(parse);
            datasetOptions.Validate();
            var path = parse.GetValue(common.Dataset)!;
            IReadOnlyList<PreferenceExample> examples;
            IReadOnlyList<string> warnings = [];
            if (PretokenizedPairs.IsPretokenizedJsonl(path, datasetOptions))
            {
                // Today's exact reader (line-numbered errors, vocabulary check) for pre-tokenized JSONL.
                examples = ScoringInput.FromPairs(PretokenizedPairs.Read(path, config.VocabSize), path);
            }
            else
            {
                var ds = PreferenceDatasetLoader.Load(path, datasetOptions);
                examples = ds.Examples;
                warnings = ds.Warnings;
            }

            bool pretokenized = examples.All(e => e.Format == PreferenceFormat.PreTokenized);
            var limits = common.GetTokenizationOptions(parse, pretokenized
                ? new TokenizationOptions { MaxLength = null, MaxPromptLength = null, MaxCompletionLength = null }
                : new TokenizationOptions());
            ITokenizer? tokenizer = !pretokenized && HasTokenizerFiles(dir) ? HfTokenizer.Load(dir) : null;
            var prepared = ScoringInput.Prepare(examples, tokenizer, limits, config.VocabSize);
            foreach (var w in warnings.Concat(prepared.Tokenization.Warnings))
            {
                err.WriteLine("warning: " + w);
            }

            var kept = prepared.Kept;
            var pairs = kept.Select(r => r.Pair!).ToList();
            using var lm = ModelLoader.Load(dir, dev);
            if (adapterDir is not null)
            {
                PeftAdapter.Load(lm, adapterDir);
            }

            var scores = PreferenceScorer.Score(lm, pairs, bs, tokenizer?.PadTokenId);
            IReadOnlyList<PairLossScore>? losses = null;
            if (baseAsReference)
            {
                IReadOnlyList<PairScore> refScores;
                using (lm.DisableAdapters())
                {
                    refScores = PreferenceScorer.Score(lm, pairs, bs, tokenizer?.PadTokenId);
                }

                losses = PairLossScorer.Compute(scores, refScores, loss!, parse.GetValue(beta));
            }
            else if (refDir is not null)
            {
                using var reference = ModelLoader.Load(refDir, dev);
                if (reference.Config.VocabSize != lm.Config.VocabSize)
                {
                    throw new DpoSharpException($"{refDir}: the reference model's vocabulary ({reference.Config.VocabSize}) differs from the model's ({lm.Config.VocabSize}); use a reference with the same tokenizer.");
                }

                var refScores = PreferenceScorer.Score(reference, pairs, bs, tokenizer?.PadTokenId);
                losses = PairLossScorer.Compute(scores, refScores, loss!, parse.GetValue(beta));
            }
            else if (referenceFree)
            {
                losses = PairLossScorer.Compute(scores, null, loss!, parse.GetValue(beta));
            }

            var rows = new ScoredRow[prepared.Rows.Count];
            foreach (var r in prepared.Rows.Where(r => r.Pair is null))
            {
                rows[r.Index] = new ScoredRow(r.Index, null, null, r.DropReason);
            }

            for (int k = 0; k < kept.Count; k++)
            {
                rows[kept[k].Index] = new ScoredRow(kept[k].Index, scores[k], losses?[k], null);
            }

            PretokenizedPairs.WriteRows(parse.GetValue(output)!, rows, losses is not null);
            loss?.Dispose();
            err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scored {pairs.Count} of {rows.Length} pairs ({rows.Length - pairs.Count} dropped) in {sw.Elapsed.TotalSeconds:F1} s -> {parse.GetValue(output)}"));
            return 0;
        });
        return cmd;
    }

    /// <summary>Whether <paramref name="dir"/> holds tokenizer files HfTokenizer can read.</summary>
    private static bool HasTokenizerFiles(string dir)
    {
        bool Has(string f) => File.Exists(Path.Combine(dir, f));
        return Has("tokenizer.json") || Has("tokenizer.model") || (Has("vocab.json") && Has("merges.txt")) || (Has("encoder.json") && Has("vocab.bpe"));
    }
}
