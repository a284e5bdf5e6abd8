using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DpoSharp.Diagnostics;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using Spectre.Console;

namespace DpoSharp.Cli.Commands;

/// <summary>
/// <c>dposharp bench</c>: times DPO optimizer steps on a published model shape with random weights and synthetic
/// pairs (nothing downloaded) and reports seconds per step, pairs/s, tokens/s, peak memory and the memory estimate by
/// part — as a table, or one JSON object with <c>--json</c>. Speed and memory numbers in BENCHMARKS.md come from it.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = $"Model shape: {string.Join(", ", ModelPresets.Names)}, or a model folder (its config.json; weights are not read).", DefaultValueFactory = _ => "gpt2" };
        var pairs = new Option<int>("--pairs") { Description = "Pairs per optimizer step.", DefaultValueFactory = _ => 4 };
        var promptLen = new Option<int>("--prompt-len") { Description = "Prompt tokens per pair.", DefaultValueFactory = _ => 128 };
        var completionLen = new Option<int>("--completion-len") { Description = "Tokens per completion.", DefaultValueFactory = _ => 128 };
        var steps = new Option<int>("--steps") { Description = "Timed steps (after one warm-up step).", DefaultValueFactory = _ => 3 };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads (0: the physical cores).", DefaultValueFactory = _ => 0 };
        var cached = new Option<bool>("--cached-reference") { Description = "Precompute the reference log-probs once instead of keeping a frozen copy." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var lora = new Option<bool>("--lora", "--use-peft") { Description = "Train LoRA adapters on the frozen base; the reference is the base with adapters disabled (no copy)." };
        var loraR = new Option<int>("--lora-r") { Description = "LoRA rank r.", DefaultValueFactory = _ => 8 };
        var loraAlpha = new Option<double>("--lora-alpha") { Description = "LoRA alpha (the update is scaled by alpha / r).", DefaultValueFactory = _ => 16 };
        var loraDropout = new Option<double>("--lora-dropout") { Description = "Dropout on the LoRA input path (off: the benchmark disables dropout as TRL does).", DefaultValueFactory = _ => 0.05 };
        var loraTarget = new Option<string?>("--lora-target", "--lora-target-modules") { Description = "LoRA target modules, comma-separated, or all-linear (default: PEFT's for the architecture)." };
        var checkpointing = new Option<bool?>("--gradient-checkpointing") { Description = "Recompute decoder layers in the backward (default: on with --lora, off otherwise)." };
        var chunk = new Option<int>("--logits-chunk-size") { Description = "Positions per lm_head chunk for log-probs (0 = full logits).", DefaultValueFactory = _ => new DpoSharp.Training.MemoryOptions().LogitsChunkSize };
        var dtype = new Option<string>("--torch-dtype") { Description = "dtype of frozen weights (the reference copy; with --lora the base): float32, bfloat16, float16.", DefaultValueFactory = _ => "float32" };
        var baseline = new Option<string>("--baseline") { Description = "Also time, interleaved in the same process, a baseline step: naive (the seed article's four full-logits passes), no-prefix-sharing, or padded (with --padding-free); adds baseline_pairs_per_second and speedup.", DefaultValueFactory = _ => "none" };
        baseline.AcceptOnlyFromAmong("none", "naive", "no-prefix-sharing", "padded");
        var paddingFree = new Option<bool>("--padding-free") { Description = "Pack each batch's sequences into rows without padding." };
        var variable = new Option<bool>("--variable-lengths") { Description = "Draw prompt and completion lengths uniformly from [L/4, L] instead of all equal." };
        var noSharing = new Option<bool>("--no-prefix-sharing") { Description = "Run one row per completion (the prompt twice) instead of sharing each pair's prompt." };
        var matmul = new Option<bool>("--matmul") { Description = "Measure matmul GFLOP/s per dtype (float32, bfloat16, float16) on this machine instead of a DPO step." };
        var mpi = new Option<bool>("--mpi") { Description = "Data-parallel scaling: run under `mpirun -np N` (and once alone) for global pairs/s, the gradient all-reduce bandwidth and a projection to N machines." };
        var networkGbps = new Option<double>("--network-gbps") { Description = "With --mpi: link bandwidth (Gbit/s) the N-machine projection assumes.", DefaultValueFactory = _ => 10 };
        var device = DeviceOption.Create();
        var cmd = new Command("bench", "Time DPO steps on a published model shape with random weights (nothing downloaded): s/step, pairs/s, tokens/s, peak memory.")
        {
            preset, pairs, promptLen, completionLen, steps, threads, cached, baseline, noSharing, paddingFree, variable, lora, loraR, loraAlpha, loraDropout, loraTarget, checkpointing, chunk, dtype, device, json, matmul, mpi, networkGbps,
        };
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(matmul))
            {
                return RunMatmul(parse, parse.GetValue(threads), parse.GetValue(json));
            }

            var options = new BenchmarkOptions
            {
                Preset = parse.GetValue(preset)!,
                Pairs = parse.GetValue(pairs),
                PromptLength = parse.GetValue(promptLen),
                CompletionLength = parse.GetValue(completionLen),
                Steps = parse.GetValue(steps),
                Threads = parse.GetValue(threads),
                CachedReference = parse.GetValue(cached),
                PrefixSharing = !parse.GetValue(noSharing),
                PaddingFree = parse.GetValue(paddingFree),
                VariableLengths = parse.GetValue(variable),
                Baseline = parse.GetValue(baseline) switch
                {
                    "naive" => BenchmarkBaseline.Naive,
                    "no-prefix-sharing" => BenchmarkBaseline.NoPrefixSharing,
                    "padded" => BenchmarkBaseline.Padded,
                    _ => BenchmarkBaseline.None,
                },
                UsePeft = parse.GetValue(lora),
                Lora = new LoraOptions
                {
                    R = parse.GetValue(loraR),
                    LoraAlpha = parse.GetValue(loraAlpha),
                    LoraDropout = parse.GetValue(loraDropout),
                    TargetModules = [.. (parse.GetValue(loraTarget) ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)],
                },
                Memory = new DpoSharp.Training.MemoryOptions
                {
                    GradientCheckpointing = parse.GetValue(checkpointing),
                    LogitsChunkSize = parse.GetValue(chunk),
                    TorchDtype = parse.GetValue(dtype)!,
                },
                Device = DeviceOption.Resolve(parse.GetValue(device)).ToString(),
            };
            options.Validate();
            if (parse.GetValue(mpi))
            {
                return MpiBenchCommand.Run(options, parse.GetValue(networkGbps), parse.GetValue(json), parse.InvocationConfiguration.Output);
            }

            var console = DpoSharpCli.CreateConsole(parse.InvocationConfiguration.Output);
            bool asJson = parse.GetValue(json);
            var result = DpoStepBenchmark.Run(options, (step, total) =>
            {
                if (!asJson)
                {
                    console.MarkupLine(step == 1 ? $"warm-up step done ({total - 1} timed steps follow)" : $"step {step - 1}/{total - 1}");
                }
            });
            if (asJson)
            {
                parse.InvocationConfiguration.Output.WriteLine(ToJson(result).ToJsonString());
            }
            else
            {
                console.Write(ToTable(result));
            }

            return 0;
        });
        return cmd;
    }

    private static int RunMatmul(ParseResult parse, int threads, bool asJson)
    {
        if (threads > 0)
        {
            TorchSharp.torch.set_num_threads(threads);
        }

        var result = new JsonObject { ["threads"] = TorchSharp.torch.get_num_threads() };
        var console = DpoSharpCli.CreateConsole(parse.InvocationConfiguration.Output);
        foreach (var type in new[] { TorchSharp.torch.ScalarType.Float32, TorchSharp.torch.ScalarType.BFloat16, TorchSharp.torch.ScalarType.Float16 })
        {
            var r = MatmulSpeed.Measure(type, n: 512, repeats: 10, maxSeconds: 30);
            var name = r.DType.ToString().ToLowerInvariant();
            result[name + "_gflops"] = r.GigaFlops;
            if (!asJson)
            {
                console.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"matmul {name} {r.Size}×{r.Size}: {r.GigaFlops:F1} GFLOP/s ({r.Repeats} in {r.Seconds:F2} s, {TorchSharp.torch.get_num_threads()} threads)"));
            }
        }

        if (asJson)
        {
            parse.InvocationConfiguration.Output.WriteLine(result.ToJsonString());
        }

        return 0;
    }

    /// <summary>The result as one JSON object (snake_case keys; bytes as integers).</summary>
    public static JsonObject ToJson(BenchmarkResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var estimate = new JsonObject();
        foreach (var (name, bytes) in r.Estimate.Parts)
        {
            estimate[name.Replace(' ', '_') + "_bytes"] = bytes;
        }

        return new JsonObject
        {
            ["preset"] = r.Options.Preset,
            ["pairs"] = r.Options.Pairs,
            ["prompt_len"] = r.Options.PromptLength,
            ["completion_len"] = r.Options.CompletionLength,
            ["steps"] = r.Options.Steps,
            ["threads"] = r.Threads,
            ["reference"] = r.Options.UsePeft ? "adapters_disabled" : r.Options.CachedReference ? "precomputed" : "frozen_copy",
            ["lora"] = r.Options.UsePeft,
            ["lora_r"] = r.Options.UsePeft ? r.Options.Lora.R : null,
            ["gradient_checkpointing"] = r.GradientCheckpointing,
            ["logits_chunk_size"] = r.Options.Memory.LogitsChunkSize,
            ["torch_dtype"] = r.Options.Memory.TorchDtype,
            ["parameters"] = r.Parameters,
            ["trainable_parameters"] = r.TrainableParameters,
            ["seconds_per_step"] = r.SecondsPerStep,
            ["warmup_seconds"] = r.WarmupSeconds,
            ["pairs_per_second"] = r.PairsPerSecond,
            ["tokens_per_second"] = r.TokensPerSecond,
            ["prefix_sharing"] = r.Options.PrefixSharing,
            ["padding_free"] = r.Options.PaddingFree,
            ["variable_lengths"] = r.Options.VariableLengths,
            ["reference_forward_seconds"] = r.Split?.ReferenceForward,
            ["policy_forward_seconds"] = r.Split?.PolicyForward,
            ["backward_seconds"] = r.Split?.Backward,
            ["optimizer_seconds"] = r.Split?.Optimizer,
            ["needed_gflop_per_step"] = r.NeededFlopsPerStep / 1e9,
            ["gemm_peak_gflops"] = r.GemmPeakGflops,
            ["achieved_gflops"] = r.AchievedGflops,
            ["mfu"] = r.Mfu,
            ["baseline"] = BaselineName(r.Options.Baseline),
            ["baseline_seconds_per_step"] = r.BaselineSecondsPerStep,
            ["baseline_pairs_per_second"] = r.BaselinePairsPerSecond,
            ["baseline_reference_forward_seconds"] = r.BaselineSplit?.ReferenceForward,
            ["baseline_policy_forward_seconds"] = r.BaselineSplit?.PolicyForward,
            ["baseline_backward_seconds"] = r.BaselineSplit?.Backward,
            ["baseline_optimizer_seconds"] = r.BaselineSplit?.Optimizer,
            ["speedup"] = r.Speedup,
            ["peak_rss_bytes"] = r.PeakRssBytes,
            ["memory_estimate_bytes"] = r.Estimate.Total,
            ["memory_estimate"] = estimate,
        };
    }

    private static string BaselineName(BenchmarkBaseline b) => b switch
    {
        BenchmarkBaseline.Naive => "naive",
        BenchmarkBaseline.NoPrefixSharing => "no-prefix-sharing",
        BenchmarkBaseline.Padded => "padded",
        _ => "none",
    };

    private static Table ToTable(BenchmarkResult r)
    {
        static string F(double x, string format) => x.ToString(format, CultureInfo.InvariantCulture);
        var table = new Table().AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("model", $"{r.Options.Preset} ({F(r.Parameters / 1e6, "F1")} M parameters, {F(r.TrainableParameters / 1e6, "F1")} M trainable)");
        table.AddRow("step", $"{r.Options.Pairs} pairs × ({r.Options.PromptLength} + {r.Options.CompletionLength}) tokens, {r.Threads} thread(s), reference {(r.Options.UsePeft ? "adapters disabled" : r.Options.CachedReference ? "precomputed" : "frozen copy")}");
        table.AddRow("memory levers", $"LoRA {(r.Options.UsePeft ? $"r {r.Options.Lora.R}" : "off")}, gradient checkpointing {(r.GradientCheckpointing ? "on" : "off")}, logits chunk {(r.Options.Memory.LogitsChunkSize > 0 ? r.Options.Memory.LogitsChunkSize.ToString(CultureInfo.InvariantCulture) : "off")}, frozen weights {r.Options.Memory.TorchDtype}");
        table.AddRow("seconds per step", $"{F(r.SecondsPerStep, "F2")} (warm-up {F(r.WarmupSeconds, "F2")})");
        table.AddRow("pairs per second", F(r.PairsPerSecond, "F3"));
        table.AddRow("tokens per second", F(r.TokensPerSecond, "F0"));
        if (r.Split is { } t)
        {
            table.AddRow("time split (s)", $"reference {F(t.ReferenceForward, "F2")}, policy forward {F(t.PolicyForward, "F2")}, backward {F(t.Backward, "F2")}, optimizer {F(t.Optimizer, "F2")}");
        }

        table.AddRow("prefix sharing", r.Options.PrefixSharing ? "on" : "off");
        table.AddRow("GFLOP/s needed work / fp32 GEMM peak", $"{F(r.AchievedGflops, "F1")} / {F(r.GemmPeakGflops, "F1")} (MFU {F(r.Mfu, "P0")})");
        if (r.BaselineSecondsPerStep is double bs && r.BaselineSplit is { } bt)
        {
            table.AddRow($"baseline {BaselineName(r.Options.Baseline)}", $"{F(bs, "F2")} s/step, {F(r.BaselinePairsPerSecond ?? 0, "F3")} pairs/s (reference {F(bt.ReferenceForward, "F2")}, policy forward {F(bt.PolicyForward, "F2")}, backward {F(bt.Backward, "F2")}, optimizer {F(bt.Optimizer, "F2")})");
            table.AddRow("speedup", F(r.Speedup ?? 0, "F2") + "×");
        }

        table.AddRow("peak RSS (VmHWM)", r.PeakRssBytes is long p ? MemoryEstimate.Gb(p) : "unknown");
        table.AddRow("memory estimate", MemoryEstimate.Gb(r.Estimate.Total));
        foreach (var (name, bytes) in r.Estimate.Parts)
        {
            table.AddRow("  " + name, MemoryEstimate.Gb(bytes));
        }

        return table;
    }
}
