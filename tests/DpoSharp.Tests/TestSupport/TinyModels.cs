using DpoSharp.Data;
using DpoSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// In-memory tiny models of every architecture (<see cref="TinyCheckpoints.Config"/> shapes, randomized weights) and
/// padded preference batches for them, for tests that compare two ways of computing the same thing.
/// </summary>
internal static class TinyModels
{
    /// <summary>A tiny <paramref name="modelType"/> model (fp32, CPU) with every parameter randomized.</summary>
    public static CausalLMBase Create(string modelType, long seed = 3, ScalarType dtype = ScalarType.Float32)
    {
        var config = ModelConfig.Parse(TinyCheckpoints.Config(modelType));
        var model = (CausalLMBase)ModelLoader.Create(config, seed: seed, dtype: dtype);
        TinyCheckpoints.Randomize(model, seed);
        return model;
    }

    /// <summary>
    /// Pairs of different lengths (right padding in a batch; the longest row, 13 tokens, is past mistral's sliding
    /// window of 8) over the tiny vocabulary.
    /// </summary>
    public static List<TokenizedPair> Pairs(int count = 3, int seed = 5)
    {
        var rng = new Random(seed);
        int[] Ids(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(TinyCheckpoints.DefaultVocabSize)).ToArray();
        return Enumerable.Range(0, count)
            .Select(i => new TokenizedPair(Ids(2 + ((i * 3) % 5)), Ids(3 + ((i * 5) % 6)), Ids(1 + ((i * 7) % 5))) { SourceIndex = i })
            .ToList();
    }

    /// <summary>A (2P, T) batch of <see cref="Pairs"/> (pad id 0).</summary>
    public static PreferenceBatch Batch(int count = 3, int seed = 5) => new PreferenceCollator(padTokenId: 0).Collate(Pairs(count, seed));

    /// <summary>Every parameter's gradient as floats (zeros where there is none), by name.</summary>
    public static Dictionary<string, float[]> Gradients(nn.Module module) =>
        module.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter.grad is { } g ? g.data<float>().ToArray() : new float[kv.parameter.numel()]);

    /// <summary>Sets every gradient to zero (none left undefined after a first backward).</summary>
    public static void ZeroGradients(nn.Module module)
    {
        using var _ = no_grad();
        foreach (var p in module.parameters())
        {
            p.grad?.zero_();
        }
    }

    /// <summary>max |a − b| over all elements of two gradient sets, and max |b| (the scale).</summary>
    public static (double MaxDiff, double Scale) Compare(Dictionary<string, float[]> a, Dictionary<string, float[]> b)
    {
        double diff = 0, scale = 0;
        foreach (var (name, expected) in b)
        {
            var actual = a[name];
            for (int i = 0; i < expected.Length; i++)
            {
                diff = Math.Max(diff, Math.Abs((double)actual[i] - expected[i]));
                scale = Math.Max(scale, Math.Abs(expected[i]));
            }
        }

        return (diff, scale);
    }
}
