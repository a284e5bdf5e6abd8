// DPO step benchmark: a published model shape (random weights) on synthetic pairs. Measures seconds per optimizer
// step (first step excluded as warm-up), pairs/s, tokens/s and the process's peak resident memory (VmHWM), plus the
// resident memory after the model build and after training.
// Usage: dotnet run -c Release --project bench/DpoSharp.Bench -- [--preset gpt2] [--batch 4] [--prompt 128]
//        [--completion 128] [--steps 4] [--threads N] [--reference frozen|precomputed|none]
using System.Diagnostics;
using System.Globalization;
using DpoSharp.Data;
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
using var trainer = new DpoTrainer(model, refModel: null, options, pairs, padTokenId: 0);
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
    $"reference={opts["reference"]}, threads={torch.get_num_threads()}"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"build {buildSeconds:F1} s; first step {stepTimes.FirstOrDefault():F2} s; {perStep:F2} s/step over {measured.Count} steps; " +
    $"{batch / perStep:F2} pairs/s; {tokensPerStep / perStep:F0} tokens/s; peak RSS {peak} (after model build {rssAfterBuild}, after training {Status("VmRSS")}); total {total.Elapsed.TotalSeconds:F1} s"));
return 0;

// A field of /proc/self/status (e.g. "VmHWM" = peak resident memory), "?" where there is none.
static string Status(string field) => File.Exists("/proc/self/status")
    ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?"
    : "?";
