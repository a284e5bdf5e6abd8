using DpoSharp.Export;
using DpoSharp.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Export;

/// <summary>
/// The exported GGUF file run by llama.cpp itself (LLamaSharp 0.30.0's CPU backend, in this process) against
/// DpoSharp's own forward pass on the same 14 token ids, for a tiny model of every architecture and every --outtype:
/// next-token log-probabilities at every position, and 6 greedy tokens after an 8-token prompt.
/// </summary>
/// <remarks>
/// Two references. <b>Exact</b>: DpoSharp's fp32 forward. <b>ggml</b>: the same forward with what llama.cpp's CPU
/// backend does to the numbers (<see cref="GgmlReference"/>): weights as the file stores them, activations converted to
/// the weight's dot-product type (f16, Q8_0 blocks) before each matrix product, gelu through ggml's f16 table.
/// <para>vs ggml, every arch and type: the same greedy tokens, and positions within 1e-5 (measured: the median
/// within 2e-6 except where a rounding step carries; every combination has positions within 1e-6). The test asks for
/// one such position, since a wrong name, layout, permutation or quantization would move all of them by 1e-2 or more.
/// Other positions may differ by one rounding step where llama.cpp's summation order puts a value on the other side
/// of an f16/Q8_0 rounding boundary (once in a key or value it carries to every later position): measured at most
/// 6.7e-4 for gpt2 f32 (the gelu table), 2.3e-3 for f16, 2.0e-2 for Q8_0 (gpt2; the others ≤ 1.2e-6), none for silu
/// f32 (≤ 6.0e-6): bounded by 2e-3, 5e-3, 5e-2 and 1e-4.</para>
/// <para>vs exact: f32 within 1e-4 for llama, mistral and qwen2 (measured 3.6e-6, 6.0e-6, 3.9e-6) with equal greedy
/// tokens; gpt2 and phi f32 differ by ggml's f16 gelu table alone (measured 1.7e-3 and 2.2e-3, bound 5e-3; the ggml
/// reference removes it). f16 rounds weights and activations to 11 significant bits, Q8_0 to 8 bits per block of 32;
/// on these random models (logits spanning about ±20) that moves log-probs by at most 1.9e-2 (f16) and 0.26 (Q8_0)
/// measured: bounds 0.05 and 0.5. Greedy tokens may then differ from exact, but not from the ggml reference.</para>
/// </remarks>
[Collection(LlamaCpp.Collection)]
public sealed class GgufLlamaCppTests(ITestOutputHelper output) : IDisposable
{
    private const int Prompt = 8;
    private const int Steps = 6;
    private readonly string _root = Directory.CreateTempSubdirectory("dposharp-gguf-llama-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [AllModelTypes]
    public void LlamaCppLogProbsAndGreedyTokensMatchDpoSharp(string type)
    {
        // mistral's window (8 in the tiny config) is widened so that 14 tokens stay inside it: llama.cpp's llama graph
        // has no sliding window (GgufExporterTests checks the context_length the export declares for 8 instead).
        // Seeds differ per architecture (llama and mistral share shapes: the same seed would give the same weights).
        var dir = GgufTestTokenizer.Checkpoint(Path.Combine(_root, type), type, seed: 11 + Array.IndexOf(AllModelTypesAttribute.Types, type), configure: c =>
        {
            if (type == "mistral")
            {
                c["sliding_window"] = 32;
            }
        });
        var rng = new Random(7);
        int[] ids = [.. Enumerable.Range(0, 14).Select(_ => rng.Next(GgufTestTokenizer.Size))];
        var (exact, exactGreedy) = DpoSharpForward(dir, ids, null);
        bool gelu = type is "gpt2" or "phi";
        foreach (var outType in new[] { GgufOutType.F32, GgufOutType.F16, GgufOutType.Q8_0 })
        {
            var gguf = Path.Combine(_root, $"{type}-{outType}.gguf");
            GgufExporter.Export(dir, gguf, outType);
            var (ggml, ggmlGreedy) = DpoSharpForward(dir, ids, outType);
            var llama = LlamaCpp.LogProbs(gguf, ids);
            var llamaGreedy = LlamaCpp.Greedy(gguf, ids[..Prompt], Steps);
            double vsExact = MaxAbsDiff(llama, exact), vsGgml = MaxAbsDiff(llama, ggml);
            output.WriteLine($"{type} {outType}: max |Δ log p| llama.cpp vs DpoSharp exact {vsExact:E2}, vs ggml reference {vsGgml:E2}; " +
                $"greedy llama.cpp [{string.Join(",", llamaGreedy)}] exact [{string.Join(",", exactGreedy)}] ggml [{string.Join(",", ggmlGreedy)}]");

            var perPosition = Enumerable.Range(0, ids.Length).Select(i => MaxAbsDiff([llama[i]], [ggml[i]])).Order().ToArray();
            output.WriteLine($"  per position vs ggml reference: min {perPosition[0]:E1}, median {perPosition[ids.Length / 2]:E1}, max {perPosition[^1]:E1}");

            // The file holds exactly what DpoSharp's weights become in this type, laid out as llama.cpp reads them: a
            // wrong name, layout, permutation or quantization would move every position by 1e-2 or more.
            Assert.True(perPosition[0] <= 1e-5, $"{type} {outType}: closest position llama.cpp vs ggml reference {perPosition[0]:E2}");
            double flips = outType switch
            {
                GgufOutType.F32 => gelu ? 2e-3 : 1e-4,
                GgufOutType.F16 => 5e-3,
                _ => 5e-2,
            };
            Assert.True(vsGgml <= flips, $"{type} {outType}: llama.cpp vs ggml reference {vsGgml:E2} > {flips}");
            Assert.Equal(ggmlGreedy, llamaGreedy);

            // And against DpoSharp's exact forward.
            double bound = outType switch
            {
                GgufOutType.F32 => gelu ? 5e-3 : 1e-4,
                GgufOutType.F16 => 0.05,
                _ => 0.5,
            };
            Assert.True(vsExact <= bound, $"{type} {outType}: llama.cpp vs DpoSharp {vsExact:E2} > {bound}");
            if (outType == GgufOutType.F32)
            {
                Assert.Equal(exactGreedy, llamaGreedy);
            }
        }
    }

    /// <summary>Log-probs (T, V) and greedy tokens of DpoSharp's forward (with llama.cpp's arithmetic for
    /// <paramref name="ggml"/>).</summary>
    private static (double[][] LogProbs, int[] Greedy) DpoSharpForward(string dir, int[] ids, GgufOutType? ggml)
    {
        using var model = (CausalLMBase)ModelLoader.Load(dir);
        if (ggml is { } t)
        {
            GgmlReference.Apply(model, t);
        }

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var logProbs = model.Forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0)).to(ScalarType.Float64).log_softmax(-1)[0]; // (T, V)
        var rows = Enumerable.Range(0, ids.Length).Select(i => logProbs[i].data<double>().ToArray()).ToArray();
        var seq = ids[..Prompt].Select(i => (long)i).ToList();
        var greedy = new List<int>();
        for (int s = 0; s < Steps; s++)
        {
            var logits = model.Forward(tensor(seq.ToArray()).unsqueeze(0))[0, -1]; // (V)
            greedy.Add((int)logits.argmax().item<long>());
            seq.Add(greedy[^1]);
        }

        return (rows, [.. greedy]);
    }

    private static double MaxAbsDiff(double[][] a, double[][] b)
    {
        double max = 0;
        for (int t = 0; t < a.Length; t++)
        {
            for (int v = 0; v < a[t].Length; v++)
            {
                max = Math.Max(max, Math.Abs(a[t][v] - b[t][v]));
            }
        }

        return max;
    }
}
