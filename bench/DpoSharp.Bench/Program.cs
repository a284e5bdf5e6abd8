// DPO step benchmark: a published model shape (random weights) on synthetic pairs. Measures seconds per optimizer
// step (first step excluded as warm-up), pairs/s, tokens/s and the process's peak resident memory (VmHWM), plus the
// resident memory after the model build and after training.
// Usage: dotnet run -c Release --project bench/DpoSharp.Bench -- [--preset gpt2] [--batch 4] [--prompt 128]
//        [--completion 128] [--steps 4] [--threads N] [--reference frozen|precomputed|none]
//        [--gradient-checkpointing false] [--logits-chunk 256 (0 = full logits)] [--completion-only true]
//        [--torch-dtype float32|bfloat16|float16 (the frozen reference copy's dtype)]
// Other modes: --mode matmul [--size 512]: fp32 / bf16 / fp16 matmul GFLOP/s;
//              --mode save --dir D: writes the preset with random weights as a HF checkpoint into D;
//              --mode load --dir D [--torch-dtype float32]: RSS before / after ModelLoader.Load(D) and the peak.
using System.Diagnostics;
using System.Globalization;
using DpoSharp.Data;
using DpoSharp.Diagnostics;
using DpoSharp.Models;
using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp;

var opts = new Dictionary<string, string>
{
    ["preset"] = "gpt2",
    ["batch"] = "4",
    ["prompt"] = "128",
    ["completion"] = "128",
    ["steps"] = "4",
    ["threads"] = "0",
    ["reference"] = "frozen",
    ["gradient-checkpointing"] = "false",
    ["logits-chunk"] = "256",
    ["completion-only"] = "true",
    ["mode"] = "step",
    ["size"] = "512",
    ["dir"] = "",
    ["torch-dtype"] = "float32",
};
for (int i = 0; i + 1 < args.Length; i += 2)
{
    var key = args[i].TrimStart('-');
    if (!opts.ContainsKey(key))
    {
        Console.Error.WriteLine($"unknown option --{key}; options: {string.Join(", ", opts.Keys.Select(k => "--" + k))}");
        return 2;
    }

    opts[key] = args[i + 1];
}

int Int(string k) => int.Parse(opts[k], CultureInfo.InvariantCulture);
if (Int("threads") > 0)
{
    torch.set_num_threads(Int("threads"));
}

bool Bool(string k) => bool.Parse(opts[k]);
switch (opts["mode"])
{
    case "matmul":
        foreach (var dtype in new[] { torch.ScalarType.Float32, torch.ScalarType.BFloat16, torch.ScalarType.Float16 })
        {
            var r = MatmulSpeed.Measure(dtype, Int("size"), repeats: 10, maxSeconds: 30);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"matmul {r.DType} n={r.Size}: {r.GigaFlops:F2} GFLOP/s ({r.Repeats} x in {r.Seconds:F2} s), threads={torch.get_num_threads()}"));
        }

        return 0;
    case "save":
        {
            using var saved = ModelLoader.Create(ModelPresets.Get(opts["preset"]), seed: 0);
            ModelSaver.Save(saved, opts["dir"]);
            Console.WriteLine($"saved {opts["preset"]} ({ModelLoader.CountParameters(saved):N0} parameters) to {opts["dir"]}; peak RSS {Status("VmHWM")}");
            return 0;
        }

    case "load":
        {
            DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();
            using (torch.NewDisposeScope())
            {
                torch.zeros(1).Dispose();   // libtorch initialised before the first reading
            }

            var before = Status("VmRSS");
            var hwmBefore = Status("VmHWM");
            var load = Stopwatch.StartNew();
            using var loaded = ModelLoader.Load(opts["dir"], dtype: DpoSharp.Training.MemoryOptions.ParseDtype(opts["torch-dtype"]));
            long bytes = loaded.Module.parameters().Sum(p => p.numel() * p.ElementSize);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"load {opts["dir"]} as {opts["torch-dtype"]}: {load.Elapsed.TotalSeconds:F1} s; weights {bytes / 1e9:F3} GB; RSS before {before} (peak {hwmBefore}), after {Status("VmRSS")}, peak {Status("VmHWM")}"));
            return 0;
        }
}

int batch = Int("batch"), promptLen = Int("prompt"), completionLen = Int("completion"), steps = Int("steps");
var config = ModelPresets.Get(opts["preset"]);
var rng = new Random(0);
var pairs = Enumerable.Range(0, batch * (steps + 1)).Select(i => new TokenizedPair(
    Enumerable.Range(0, promptLen).Select(_ => rng.Next(config.VocabSize)).ToArray(),
    Enumerable.Range(0, completionLen).Select(_ => rng.Next(config.VocabSize)).ToArray(),
    Enumerable.Range(0, completionLen).Select(_ => rng.Next(config.VocabSize)).ToArray())
{ SourceIndex = i }).ToList();

var output = Directory.CreateTempSubdirectory("dposharp-bench-").FullName;
var build = Stopwatch.StartNew();
using var model = ModelLoader.Create(config, seed: 0);
var memory = new MemoryOptions
{
    GradientCheckpointing = Bool("gradient-checkpointing"),
    LogitsChunkSize = Int("logits-chunk"),
    CompletionOnlyLogits = Bool("completion-only"),
};
memory.ApplyTo(model);
var buildSeconds = build.Elapsed.TotalSeconds;
var rssAfterBuild = Status("VmRSS");
var options = new DpoOptions
{
    OutputDir = output,
    PerDeviceTrainBatchSize = batch,
    MaxSteps = steps + 1,
    LoggingSteps = 1,
    SaveSteps = 1_000_000,
    ReportTo = [ReportTarget.None],
    MaxLength = null,
    MaxPromptLength = null,
    LearningRate = 1e-6,
    ReferenceFree = opts["reference"] == "none",
    PrecomputeRefLogProbs = opts["reference"] == "precomputed",
};
// --torch-dtype: the frozen reference copy's dtype (the policy stays fp32).
using var reference = opts["torch-dtype"] == "float32" || options.ReferenceFree || options.PrecomputeRefLogProbs
    ? null
    : ModelLoader.Copy(model, dtype: MemoryOptions.ParseDtype(opts["torch-dtype"]));
using var trainer = new DpoTrainer(model, reference, options, pairs, padTokenId: 0);
var stepTimes = new List<double>();
var sw = Stopwatch.StartNew();
trainer.StepCompleted += (_, _) =>
{
    stepTimes.Add(sw.Elapsed.TotalSeconds);
    sw.Restart();
};
var total = Stopwatch.StartNew();
try
{
    trainer.Train();
}
finally
{
    Directory.Delete(output, recursive: true);
}

var measured = stepTimes.Skip(1).ToList();
double perStep = measured.Count > 0 ? measured.Average() : double.NaN;
long tokensPerStep = 2L * batch * (promptLen + completionLen);
string peak = Status("VmHWM");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"preset={opts["preset"]} params={ModelLoader.CountParameters(model):N0} batch={batch} pairs, seq={promptLen}+{completionLen}, " +
    $"reference={opts["reference"]}, threads={torch.get_num_threads()}, gradient_checkpointing={memory.GradientCheckpointing}, " +
    $"logits_chunk={memory.LogitsChunkSize}, completion_only={memory.CompletionOnlyLogits}, reference_dtype={opts["torch-dtype"]}"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"build {buildSeconds:F1} s; first step {stepTimes.FirstOrDefault():F2} s; {perStep:F2} s/step over {measured.Count} steps; " +
    $"{batch / perStep:F2} pairs/s; {tokensPerStep / perStep:F0} tokens/s; peak RSS {peak} (after model build {rssAfterBuild}, after training {Status("VmRSS")}); total {total.Elapsed.TotalSeconds:F1} s"));
return 0;

// A field of /proc/self/status (e.g. "VmHWM" = peak resident memory), "?" where there is none.
static string Status(string field) => File.Exists("/proc/self/status")
    ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?"
    : "?";
