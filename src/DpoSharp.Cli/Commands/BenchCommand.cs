using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DpoSharp.Diagnostics;
using DpoSharp.Models;
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
        var threads = new Option<int>("--threads") { Description = "Intra-op threads (0: libtorch's default).", DefaultValueFactory = _ => 0 };
        var cached = new Option<bool>("--cached-reference") { Description = "Precompute the reference log-probs once instead of keeping a frozen copy." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var device = DeviceOption.Create();
        var cmd = new Command("bench", "Time DPO steps on a published model shape with random weights (nothing downloaded): s/step, pairs/s, tokens/s, peak memory.")
        {
            preset, pairs, promptLen, completionLen, steps, threads, cached, device, json,
        };
        cmd.SetAction(parse =>
        {
            var options = new BenchmarkOptions
            {
                Preset = parse.GetValue(preset)!,
                Pairs = parse.GetValue(pairs),
                PromptLength = parse.GetValue(promptLen),
                CompletionLength = parse.GetValue(completionLen),
                Steps = parse.GetValue(steps),
                Threads = parse.GetValue(threads),
                CachedReference = parse.GetValue(cached),
                Device = DeviceOption.Resolve(parse.GetValue(device)).ToString(),
            };
            options.Validate();
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
            ["reference"] = r.Options.CachedReference ? "precomputed" : "frozen_copy",
            ["parameters"] = r.Parameters,
            ["trainable_parameters"] = r.TrainableParameters,
            ["seconds_per_step"] = r.SecondsPerStep,
            ["warmup_seconds"] = r.WarmupSeconds,
            ["pairs_per_second"] = r.PairsPerSecond,
            ["tokens_per_second"] = r.TokensPerSecond,
            ["peak_rss_bytes"] = r.PeakRssBytes,
            ["memory_estimate_bytes"] = r.Estimate.Total,
            ["memory_estimate"] = estimate,
        };
    }

    private static Table ToTable(BenchmarkResult r)
    {
        static string F(double x, string format) => x.ToString(format, CultureInfo.InvariantCulture);
        var table = new Table().AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("model", $"{r.Options.Preset} ({F(r.Parameters / 1e6, "F1")} M parameters, {F(r.TrainableParameters / 1e6, "F1")} M trainable)");
        table.AddRow("step", $"{r.Options.Pairs} pairs × ({r.Options.PromptLength} + {r.Options.CompletionLength}) tokens, {r.Threads} thread(s), reference {(r.Options.CachedReference ? "precomputed" : "frozen copy")}");
        table.AddRow("seconds per step", $"{F(r.SecondsPerStep, "F2")} (warm-up {F(r.WarmupSeconds, "F2")})");
        table.AddRow("pairs per second", F(r.PairsPerSecond, "F3"));
        table.AddRow("tokens per second", F(r.TokensPerSecond, "F0"));
        table.AddRow("peak RSS (VmHWM)", r.PeakRssBytes is long p ? MemoryEstimate.Gb(p) : "unknown");
        table.AddRow("memory estimate", MemoryEstimate.Gb(r.Estimate.Total));
        foreach (var (name, bytes) in r.Estimate.Parts)
        {
            table.AddRow("  " + name, MemoryEstimate.Gb(bytes));
        }

        return table;
    }
}
