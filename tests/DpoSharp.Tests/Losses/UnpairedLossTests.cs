using DpoSharp.Data;
using DpoSharp.Losses;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

/// <summary>KTO's losses against TRL's <c>kto_loss</c> re-derived in doubles, the KL reference point, and the
/// mismatched prompt/completion rows it is estimated from.</summary>
public class UnpairedLossTests
{
    private static readonly double[] Policy = [-3.0, -7.5, -2.0, -4.0];
    private static readonly double[] Reference = [-4.0, -7.0, -2.5, -3.0];
    private static readonly bool[] Labels = [true, false, true, false];

    public UnpairedLossTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static double Sig(double x) => 1 / (1 + Math.Exp(-x));

    private static Tensor T(double[] v) => tensor(v.Select(x => (float)x).ToArray());

    private static void AssertClose(double[] expected, Tensor actual, double tol = 1e-5)
    {
        var a = actual.detach().to(ScalarType.Float64).data<double>().ToArray();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - a[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"[{i}] expected {expected[i]}, got {a[i]}");
        }
    }

    [Theory]
    [InlineData(0.1, 1.0, 1.0)]
    [InlineData(0.5, 1.33, 0.7)]
    public void KtoWeighsDesirableAndUndesirableAgainstTheKlPoint(double beta, double wd, double wu)
    {
        using var scope = NewDisposeScope();
        const double kl = 0.3;
        var o = new KtoLoss().Compute(new UnpairedLossInput(T(Policy), T(Reference), tensor(Labels), tensor(0.3f), beta, wd, wu));
        double[] expected = [.. Policy.Select((p, i) =>
        {
            double rho = p - Reference[i];
            return Labels[i] ? wd * (1 - Sig(beta * (rho - kl))) : wu * (1 - Sig(beta * (kl - rho)));
        })];
        AssertClose(expected, o.Losses);
        AssertClose([.. Policy.Select((p, i) => beta * (p - Reference[i]))], o.Rewards);
        Assert.False(o.Rewards.requires_grad);
    }

    [Fact]
    public void ApoZeroUnpairedRaisesDesirableAndLowersUndesirableWithoutKl()
    {
        using var scope = NewDisposeScope();
        const double beta = 0.2;
        var loss = UnpairedLosses.Create("apo_zero_unpaired");
        Assert.False(loss.UsesKl);
        var o = loss.Compute(new UnpairedLossInput(T(Policy), T(Reference), tensor(Labels), null, beta, 2.0, 0.5));
        AssertClose([.. Policy.Select((p, i) => Labels[i] ? 2.0 * (1 - Sig(beta * (p - Reference[i]))) : 0.5 * Sig(beta * (p - Reference[i])))], o.Losses);
        Assert.Throws<DpoSharpException>(() => UnpairedLosses.Create("sigmoid"));
    }

    [Fact]
    public void KlPointIsTheClampedMeanLogRatioOfTheMismatchedRowsWithoutGradient()
    {
        using var scope = NewDisposeScope();
        var policyKl = T([-5.0, -2.0, -9.0]).requires_grad_(true);
        var kl = KtoLoss.KlEstimate(policyKl, T([-6.0, -2.5, -8.0]));
        Assert.Equal((1.0 + 0.5 - 1.0) / 3, kl.item<float>(), 6);
        Assert.False(kl.requires_grad);
        Assert.Equal(0f, KtoLoss.KlEstimate(T([-9.0, -9.0]), T([-1.0, -2.0])).item<float>());   // negative mean → 0
    }

    [Fact]
    public void KlRowsPairEachPromptWithThePreviousExamplesCompletionWithinTheBatch()
    {
        using var scope = NewDisposeScope();
        TokenizedUnpaired[] data =
        [
            new([1, 2], [10], true),
            new([3], [11, 12], false),
            new([4, 5, 6], [13], true),
            new([7], [14, 15, 16], false),
        ];
        var batch = new KtoCollator(padTokenId: 0).Collate(data, [3, 0, 2], CPU);

        // Rows: examples 3, 0, 2. KL rows: prompt 3 + completion 2, prompt 0 + completion 3, prompt 2 + completion 0.
        long[][] Rows(Tensor ids, Tensor mask) => [.. Enumerable.Range(0, (int)ids.shape[0]).Select(r =>
            ids[r].data<long>().Zip(mask[r].data<long>()).Where(z => z.Second == 1).Select(z => z.First).ToArray())];
        var kl = batch.KlRows!;
        Assert.Equal([7, 13], Rows(kl.InputIds, kl.AttentionMask)[0]);
        Assert.Equal([1, 2, 14, 15, 16], Rows(kl.InputIds, kl.AttentionMask)[1]);
        Assert.Equal([4, 5, 6, 10], Rows(kl.InputIds, kl.AttentionMask)[2]);
        Assert.Equal([13], Rows(kl.InputIds, kl.CompletionMask)[0]);
        Assert.Equal([14, 15, 16], Rows(kl.InputIds, kl.CompletionMask)[1]);
        Assert.Equal([7, 14, 15, 16], Rows(batch.InputIds, batch.AttentionMask)[0]);
        Assert.Equal([false, true, true], batch.LabelValues);
        Assert.Equal([false, true, true], batch.Labels.data<bool>().ToArray());
        Assert.Null(new KtoCollator(0, withKl: false).Collate(data, [0, 1], CPU).KlRows);
    }
}
