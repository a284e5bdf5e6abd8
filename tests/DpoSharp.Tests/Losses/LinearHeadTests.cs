using DpoSharp.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

/// <summary>
/// The plain linear <c>lm_head</c> road of <see cref="HiddenStateLogProbs"/> (<see cref="HiddenStateLogProbs.LinearHead"/>:
/// vocabulary-first (V, c) logits in one reused buffer, gradients accumulated by hand into <c>.grad</c>) against the
/// generic road (the head as a function, autograd through it) on the same weights: the same sums, mean logits, greedy
/// hits, WPO terms and gradients of the hidden states, the weight and the bias.
/// </summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class LinearHeadTests
{
    private const long V = 37, D = 8, B = 3, T = 7;

    public LinearHeadTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private sealed record Outcome(double[] Sums, double[] MeanLogits, double[] Hits, double[] Wpo, double[] HiddenGrad, double[]? WeightGrad, double[]? BiasGrad);

    private static double[] Values(Tensor t) => t.to(ScalarType.Float64).data<double>().ToArray();

    /// <summary>(B, T) ids and a completion mask with prompt positions, a padded row end and a row whose last tokens are completion.</summary>
    private static (Tensor Ids, Tensor Mask) Tokens()
    {
        var ids = randint(0, V, [B, T]);
        var mask = tensor(new long[] { 0, 0, 1, 1, 1, 0, 0, /**/ 0, 1, 1, 1, 1, 1, 1, /**/ 0, 0, 0, 0, 1, 1, 0 }).view(B, T);
        return (ids, mask);
    }

    /// <summary>One forward (all statistics) and backward of Σ_r c_r · sums_r (distinct c_r) on either road.</summary>
    private static Outcome Run(Tensor hidden, Tensor weight, Tensor? bias, Tensor ids, Tensor mask, int chunk, bool completionOnly, bool linear)
    {
        using var scope = NewDisposeScope();
        foreach (var t in new[] { hidden, weight, bias })
        {
            t?.grad?.zero_();
        }

        var parameters = bias is null ? new[] { weight } : [weight, bias];
        var r = HiddenStateLogProbs.Compute(hidden, x => nn.functional.linear(x, weight, bias), parameters, ids, mask, chunk, completionOnly,
            CompletionStatistics.TokenHits | CompletionStatistics.WpoTerms, linearHead: linear ? new HiddenStateLogProbs.LinearHead(weight, bias) : null);
        var coef = arange(1, B + 1, ScalarType.Float32) * 0.7;                                 // (B)
        (r.LogProbs.Sums * coef).sum().backward();
        return new Outcome(Values(r.LogProbs.Sums), Values(r.LogProbs.MeanLogits), Values(r.TokenHits!), Values(r.WpoTermSums!), Values(hidden.grad!),
            weight.grad is { } gw ? Values(gw) : null, bias?.grad is { } gb ? Values(gb) : null);
    }

    private static void AssertClose(double[]? expected, double[]? actual, string what)
    {
        Assert.NotNull(expected);
        Assert.NotNull(actual);
        Assert.Equal(expected.Length, actual.Length);
        double scale = Math.Max(1, expected.Max(Math.Abs));
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * scale, $"{what}[{i}]: {actual[i]} vs {expected[i]}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheLinearHeadRoadGivesTheValuesAndGradientsOfTheGenericRoad(bool withBias)
    {
        manual_seed(11);
        var weight = randn(V, D).requires_grad_(true);
        var bias = withBias ? randn(V).requires_grad_(true) : null;
        var hidden = randn(B, T, D).requires_grad_(true);
        var (ids, mask) = Tokens();
        foreach (int chunk in new[] { 1, 4, 256 })
        {
            foreach (bool completionOnly in new[] { true, false })
            {
                string what = $"bias {withBias} chunk {chunk} completion-only {completionOnly}";
                var expected = Run(hidden, weight, bias, ids, mask, chunk, completionOnly, linear: false);
                var actual = Run(hidden, weight, bias, ids, mask, chunk, completionOnly, linear: true);
                AssertClose(expected.Sums, actual.Sums, what + " sums");
                AssertClose(expected.MeanLogits, actual.MeanLogits, what + " mean logits");
                Assert.Equal(expected.Hits, actual.Hits);
                AssertClose(expected.Wpo, actual.Wpo, what + " wpo");
                AssertClose(expected.HiddenGrad, actual.HiddenGrad, what + " hidden grad");
                AssertClose(expected.WeightGrad, actual.WeightGrad, what + " weight grad");
                if (withBias)
                {
                    AssertClose(expected.BiasGrad, actual.BiasGrad, what + " bias grad");
                }

                Assert.Contains(expected.WeightGrad!, g => g != 0);
            }
        }
    }

    [Fact]
    public void TheLinearHeadAddsToGradientsAlreadyThereCreatesMissingOnesAndLeavesFrozenWeightsWithout()
    {
        manual_seed(12);
        var weight = randn(V, D).requires_grad_(true);
        var bias = randn(V).requires_grad_(true);
        var hidden = randn(B, T, D).requires_grad_(true);
        var (ids, mask) = Tokens();

        // No .grad yet: the road creates it (as autograd would); then a second backward adds to it (gradient accumulation).
        Assert.Null(weight.grad);
        var once = Run(hidden, weight, bias, ids, mask, 4, true, linear: true);
        using (var scope = NewDisposeScope())
        {
            var r = HiddenStateLogProbs.Compute(hidden, x => nn.functional.linear(x, weight, bias), [weight, bias], ids, mask, 4, linearHead: new HiddenStateLogProbs.LinearHead(weight, bias));
            (r.LogProbs.Sums * (arange(1, B + 1, ScalarType.Float32) * 0.7)).sum().backward();
        }

        AssertClose(once.WeightGrad!.Select(g => 2 * g).ToArray(), Values(weight.grad!), "accumulated weight grad");
        AssertClose(once.BiasGrad!.Select(g => 2 * g).ToArray(), Values(bias.grad!), "accumulated bias grad");

        // A frozen head (a LoRA base): no gradient for it, the hidden states' gradient as on the generic road.
        var frozen = randn(V, D);
        var expected = Run(hidden, frozen, null, ids, mask, 3, true, linear: false);
        var actual = Run(hidden, frozen, null, ids, mask, 3, true, linear: true);
        Assert.Null(frozen.grad);
        AssertClose(expected.HiddenGrad, actual.HiddenGrad, "hidden grad with a frozen head");
    }
}
