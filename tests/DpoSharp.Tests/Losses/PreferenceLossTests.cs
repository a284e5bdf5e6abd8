using DpoSharp.Losses;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

/// <summary>
/// Every loss against the TRL formulas re-derived here in plain doubles (closed form), plus torchtune's published
/// DPO / hinge vectors and the analytic gradient of the sigmoid loss.
/// </summary>
public class PreferenceLossTests
{
    // Four pairs: policy / reference log-prob sums and completion token counts.
    private static readonly double[] Pc = [-0.5, -10.0, -1.0, -7.3];
    private static readonly double[] Pr = [-0.1, -30.0, -21.0, -6.9];
    private static readonly double[] Rc = [-0.5, -10.1, -0.1, -8.0];
    private static readonly double[] Rr = [-0.1, -20.1, -0.1, -6.0];
    private static readonly double[] Nc = [1, 5, 3, 7];
    private static readonly double[] Nr = [2, 9, 4, 6];

    public PreferenceLossTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static double Sig(double x) => 1 / (1 + Math.Exp(-x));

    private static double LogSig(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    private static double Softplus(double x) => x - LogSig(x);

    private static double[] Map(Func<int, double> f) => [.. Enumerable.Range(0, Pc.Length).Select(f)];

    private static double Lc(int i) => Pc[i] - Rc[i];

    private static double Lr(int i) => Pr[i] - Rr[i];

    private static double DpoLogits(int i) => (Pc[i] - Pr[i]) - (Rc[i] - Rr[i]);

    private static PreferenceLossInput Input(double beta, bool withRef = true, double[]? pc = null, double[]? pr = null, double[]? rc = null, double[]? rr = null)
    {
        static Tensor T(double[] v) => tensor(v.Select(x => (float)x).ToArray());
        return new PreferenceLossInput(T(pc ?? Pc), T(pr ?? Pr), withRef ? T(rc ?? Rc) : null, withRef ? T(rr ?? Rr) : null, T(Nc), T(Nr), beta);
    }

    private static double[] Read(Tensor t) => [.. t.to(ScalarType.Float64).data<double>()];

    private static void AssertClose(double[] expected, Tensor actual, double tol = 2e-4)
    {
        var a = Read(actual);
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - a[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"[{i}] expected {expected[i]}, got {a[i]}");
        }
    }

    private static PreferenceLossOutput Run(string type, double beta, LossOptions? o = null, bool withRef = true)
        => PreferenceLosses.Create(type, o ?? new LossOptions()).Compute(Input(beta, withRef));

    private static void AssertStandardRewards(PreferenceLossOutput o, double beta)
    {
        AssertClose(Map(i => beta * Lc(i)), o.ChosenRewards);
        AssertClose(Map(i => beta * Lr(i)), o.RejectedRewards);
        Assert.False(o.ChosenRewards.requires_grad);
    }

    [Fact]
    public void SigmoidMatchesTorchtuneClosedFormVector()
    {
        using var scope = NewDisposeScope();
        // torchtune test_dpo_loss.py: beta 0.1, logits [0, 10, 20] -> loss -log(1 / (1 + exp(-[0, 1, 2]))).
        var input = new PreferenceLossInput(
            tensor(new[] { -0.5f, -10f, -1f }), tensor(new[] { -0.1f, -30f, -21f }),
            tensor(new[] { -0.5f, -10.1f, -0.1f }), tensor(new[] { -0.1f, -20.1f, -0.1f }),
            tensor(new[] { 1f, 1, 1 }), tensor(new[] { 1f, 1, 1 }), 0.1);
        var o = PreferenceLosses.Create("sigmoid", new LossOptions()).Compute(input);
        AssertClose([.. new[] { 0.0, -1, -2 }.Select(x => -Math.Log(1 / (1 + Math.Exp(x))))], o.Losses, 1e-5);
        // torchtune's RSO (hinge) vector with gamma 0.1: [1, 0, 0].
        AssertClose([1, 0, 0], PreferenceLosses.Create("hinge", new LossOptions()).Compute(input).Losses, 1e-6);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.2)]
    public void SigmoidWithLabelSmoothingIsConservativeDpo(double eps)
    {
        using var scope = NewDisposeScope();
        var o = Run("sigmoid", 0.1, new LossOptions { LabelSmoothing = eps });
        AssertClose(Map(i => (-(1 - eps) * LogSig(0.1 * DpoLogits(i))) - (eps * LogSig(-0.1 * DpoLogits(i)))), o.Losses);
        AssertStandardRewards(o, 0.1);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void Robust(double eps)
    {
        using var scope = NewDisposeScope();
        var o = Run("robust", 0.2, new LossOptions { LabelSmoothing = eps });
        AssertClose(Map(i => ((-(1 - eps) * LogSig(0.2 * DpoLogits(i))) + (eps * LogSig(-0.2 * DpoLogits(i)))) / (1 - (2 * eps))), o.Losses);
        AssertStandardRewards(o, 0.2);
    }

    [Fact]
    public void RobustRejectsHalfLabelSmoothing()
    {
        var ex = Assert.Throws<DpoSharpException>(() => PreferenceLosses.Create("robust", new LossOptions { LabelSmoothing = 0.5 }));
        Assert.Contains("label_smoothing", ex.Message);
    }

    [Theory]
    [InlineData(0.0, 1e-3)]
    [InlineData(0.2, 0.2)]
    public void ExoPairUsesLabelSmoothingOrOneThousandth(double ls, double eps)
    {
        using var scope = NewDisposeScope();
        var o = Run("exo_pair", 0.1, new LossOptions { LabelSmoothing = ls });
        AssertClose(Map(i =>
        {
            double z = 0.1 * DpoLogits(i);
            return (Sig(z) * (LogSig(z) - Math.Log(1 - eps))) + (Sig(-z) * (LogSig(-z) - Math.Log(eps)));
        }), o.Losses);
        AssertStandardRewards(o, 0.1);
    }

    [Fact]
    public void Hinge()
    {
        using var scope = NewDisposeScope();
        var o = Run("hinge", 0.05);
        AssertClose(Map(i => Math.Max(0, 1 - (0.05 * DpoLogits(i)))), o.Losses);
        AssertStandardRewards(o, 0.05);
    }

    [Fact]
    public void IpoAveragesLogProbsPerTokenIncludingRewards()
    {
        using var scope = NewDisposeScope();
        var o = Run("ipo", 0.5);
        double Ac(int i) => (Pc[i] / Nc[i]) - (Rc[i] / Nc[i]);
        double Ar(int i) => (Pr[i] / Nr[i]) - (Rr[i] / Nr[i]);
        AssertClose(Map(i => Math.Pow(Ac(i) - Ar(i) - (1 / (2 * 0.5)), 2)), o.Losses);
        AssertClose(Map(i => 0.5 * Ac(i)), o.ChosenRewards);
        AssertClose(Map(i => 0.5 * Ar(i)), o.RejectedRewards);
    }

    [Fact]
    public void SppoHard()
    {
        using var scope = NewDisposeScope();
        var o = Run("sppo_hard", 0.1);
        AssertClose(Map(i => Math.Pow(Lc(i) - 5, 2) + Math.Pow(Lr(i) + 5, 2)), o.Losses);
        AssertStandardRewards(o, 0.1);
    }

    [Fact]
    public void NcaPair()
    {
        using var scope = NewDisposeScope();
        var o = Run("nca_pair", 0.3);
        AssertClose(Map(i => -LogSig(0.3 * Lc(i)) - (0.5 * LogSig(-0.3 * Lc(i))) - (0.5 * LogSig(-0.3 * Lr(i)))), o.Losses);
        AssertStandardRewards(o, 0.3);
    }

    [Fact]
    public void ApoZeroAndApoDown()
    {
        using var scope = NewDisposeScope();
        var zero = Run("apo_zero", 0.1);
        AssertClose(Map(i => 1 - Sig(0.1 * Lc(i)) + Sig(0.1 * Lr(i))), zero.Losses);
        AssertStandardRewards(zero, 0.1);
        var down = Run("apo_down", 0.1);
        AssertClose(Map(i => Sig(0.1 * Lc(i)) + 1 - Sig(0.1 * (Lc(i) - Lr(i)))), down.Losses);
        AssertStandardRewards(down, 0.1);
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.5)]
    public void Discopop(double tau)
    {
        using var scope = NewDisposeScope();
        var o = Run("discopop", 0.1, new LossOptions { DiscopopTau = tau });
        AssertClose(Map(i =>
        {
            double z = 0.1 * DpoLogits(i);
            double m = Sig(z / tau);
            return (-LogSig(z) * (1 - m)) + (Math.Exp(-z) * m);
        }), o.Losses);
        AssertStandardRewards(o, 0.1);
    }

    [Fact]
    public void SigmoidNormUsesLengthNormalisedLogRatios()
    {
        using var scope = NewDisposeScope();
        var o = Run("sigmoid_norm", 0.1);
        AssertClose(Map(i => -LogSig(0.1 * ((Lc(i) / Nc[i]) - (Lr(i) / Nr[i])))), o.Losses);
        AssertStandardRewards(o, 0.1);
    }

    [Fact]
    public void SftIsTheTokenMeanNllOfChosen()
    {
        using var scope = NewDisposeScope();
        var o = Run("sft", 0.1);
        double nll = -Pc.Sum() / Nc.Sum();
        AssertClose(Map(_ => nll), o.Losses);
        Assert.NotNull(o.NllLoss);
        Assert.Equal(nll, o.NllLoss!.item<float>(), 4);
        AssertStandardRewards(o, 0.1);
    }

    [Fact]
    public void AotSortsMarginsAcrossTheBatch()
    {
        using var scope = NewDisposeScope();
        var o = Run("aot", 0.1, new LossOptions { LabelSmoothing = 0.1 });
        var pol = Map(i => Pc[i] - Pr[i]).Order().ToArray();
        var refs = Map(i => Rc[i] - Rr[i]).Order().ToArray();
        AssertClose(Map(i => (-0.9 * LogSig(0.1 * (pol[i] - refs[i]))) - (0.1 * LogSig(-0.1 * (pol[i] - refs[i])))), o.Losses);
        AssertStandardRewards(o, 0.1);
    }

    [Fact]
    public void AotUnpairedSortsChosenAndRejectedSeparately()
    {
        using var scope = NewDisposeScope();
        var o = Run("aot_unpaired", 0.1);
        var c = Map(Lc).Order().ToArray();
        var r = Map(Lr).Order().ToArray();
        AssertClose(Map(i => -LogSig(0.1 * (c[i] - r[i]))), o.Losses);
        AssertStandardRewards(o, 0.1);
    }

    [Fact]
    public void BcoPairShiftsByTheRunningMeanRewardAndResumesFromSavedState()
    {
        using var scope = NewDisposeScope();
        const double beta = 0.1;
        var loss = (BcoPairLoss)PreferenceLosses.Create("bco_pair", new LossOptions());
        var first = loss.Compute(Input(beta));

        // TRL RunningMoments: mean 0, var 1, count 1e-24; each update merges one value (the batch's mean reward).
        double mean = 0, var = 1, count = 1e-24;
        double Update(double x)
        {
            double delta = x - mean, total = count + 1;
            double oldSum = (var * count) + (delta * delta * count * 1 / total);
            mean += delta / total;
            var = oldSum / total;
            count = total;
            return mean;
        }

        double m1 = (Map(i => beta * Lc(i)).Sum() + Map(i => beta * Lr(i)).Sum()) / (2 * Pc.Length);
        double d1 = Update(m1);
        AssertClose(Map(i => -LogSig((beta * Lc(i)) - d1) - LogSig(-((beta * Lr(i)) - d1))), first.Losses);
        AssertStandardRewards(first, beta);

        var saved = loss.SaveState();
        Assert.Equal(d1, saved["mean"], 6);

        // Second batch: chosen/rejected swapped, so δ moves.
        double[] pc2 = Pr, pr2 = Pc, rc2 = Rr, rr2 = Rc;
        double m2 = (Enumerable.Range(0, 4).Sum(i => beta * (pc2[i] - rc2[i])) + Enumerable.Range(0, 4).Sum(i => beta * (pr2[i] - rr2[i]))) / 8;
        double d2 = Update(m2);
        double[] expected2 = Map(i => -LogSig((beta * (pc2[i] - rc2[i])) - d2) - LogSig(-((beta * (pr2[i] - rr2[i])) - d2)));
        AssertClose(expected2, loss.Compute(Input(beta, true, pc2, pr2, rc2, rr2)).Losses);

        // A fresh loss restored from the state after batch 1 computes batch 2 identically.
        var resumed = (BcoPairLoss)PreferenceLosses.Create("bco_pair", new LossOptions());
        resumed.LoadState(saved);
        AssertClose(expected2, resumed.Compute(Input(beta, true, pc2, pr2, rc2, rr2)).Losses);
        Assert.Throws<DpoSharpException>(() => resumed.LoadState(new Dictionary<string, double> { ["mean"] = 0 }));
        loss.Dispose();
        resumed.Dispose();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReferenceFreeTreatsReferenceLogProbsAsZero(bool refsGiven)
    {
        using var scope = NewDisposeScope();
        var o = Run("sigmoid", 0.1, new LossOptions { ReferenceFree = true }, withRef: refsGiven);
        AssertClose(Map(i => -LogSig(0.1 * (Pc[i] - Pr[i]))), o.Losses);
        AssertClose(Map(i => 0.1 * Pc[i]), o.ChosenRewards);
        AssertClose(Map(i => 0.1 * Pr[i]), o.RejectedRewards);
        var nca = Run("nca_pair", 0.1, new LossOptions { ReferenceFree = true }, withRef: refsGiven);
        AssertClose(Map(i => -LogSig(0.1 * Pc[i]) - (0.5 * LogSig(-0.1 * Pc[i])) - (0.5 * LogSig(-0.1 * Pr[i]))), nca.Losses);
    }

    [Theory]
    [InlineData("reverse_kl", 1.0)]
    [InlineData("forward_kl", 1.0)]
    [InlineData("js_divergence", 1.0)]
    [InlineData("alpha_divergence", 0.5)]
    [InlineData("alpha_divergence", 1.0)]
    public void FDivergencesChangeTheLogits(string type, double alpha)
    {
        using var scope = NewDisposeScope();
        // Smaller log-ratios so exp() terms stay moderate.
        double[] pc = [-2.0, -3.5, -1.0], pr = [-2.5, -3.0, -4.0], rc = [-2.2, -3.0, -1.5], rr = [-2.0, -3.1, -3.0];
        Func<double, double> score = type switch
        {
            "reverse_kl" => r => r,
            "forward_kl" => r => -Math.Exp(-r),
            "js_divergence" => r => r - Softplus(r),                    // log(2u/(1+u)) without log 2
            _ => r => -Math.Exp(-alpha * r) / alpha,                   // (1 - u^-α)/α without 1/α
        };
        var o = PreferenceLosses.Create("sigmoid", new LossOptions { FDivergenceType = type, FAlphaDivergenceCoef = alpha })
            .Compute(Input(0.1, true, pc, pr, rc, rr) with
            {
                ChosenTokenCounts = ones(3),
                RejectedTokenCounts = ones(3),
            });
        double[] expected = [.. Enumerable.Range(0, 3).Select(i => -LogSig(0.1 * (score(pc[i] - rc[i]) - score(pr[i] - rr[i]))))];
        AssertClose(expected, o.Losses);
        AssertClose([.. Enumerable.Range(0, 3).Select(i => 0.1 * (pc[i] - rc[i]))], o.ChosenRewards);
    }

    [Fact]
    public void LossWeightsCombineLossesAndRewardsAsTrl()
    {
        using var scope = NewDisposeScope();
        const double beta = 0.1;
        var combined = PreferenceLosses.Create(["sigmoid", "sppo_hard", "sft"], [0.8, 0.2, 1.0], new LossOptions());
        var o = combined.Compute(Input(beta));
        double nll = -Pc.Sum() / Nc.Sum();
        AssertClose(Map(i => (0.8 * -LogSig(beta * DpoLogits(i))) + (0.2 * (Math.Pow(Lc(i) - 5, 2) + Math.Pow(Lr(i) + 5, 2))) + nll), o.Losses);
        AssertClose(Map(i => 2.0 * beta * Lc(i)), o.ChosenRewards);          // Σ weights · reward, as TRL 0.28
        AssertClose(Map(i => 2.0 * beta * Lr(i)), o.RejectedRewards);
        Assert.Equal(nll, o.NllLoss!.item<float>(), 4);
        Assert.True(combined.UsesNll);
        Assert.Equal("sigmoid,sppo_hard,sft", combined.Name);
    }

    [Fact]
    public void RpoAlphaAddsTheChosenNllAndPairWeightsMultiply()
    {
        using var scope = NewDisposeScope();
        var combined = PreferenceLosses.Create(["sigmoid"], null, new LossOptions { RpoAlpha = 0.5 });
        double[] w = [0.5, 1, 0.25, 2];
        var o = combined.Compute(Input(0.1) with { PairWeights = tensor(w.Select(x => (float)x).ToArray()) });
        double nll = -Pc.Sum() / Nc.Sum();
        AssertClose(Map(i => (-LogSig(0.1 * DpoLogits(i)) + (0.5 * nll)) * w[i]), o.Losses);
        Assert.Equal(nll, o.NllLoss!.item<float>(), 4);
    }

    [Fact]
    public void IpoInACombinationAveragesEveryLossPerToken()
    {
        using var scope = NewDisposeScope();
        var o = PreferenceLosses.Create(["ipo", "sigmoid"], null, new LossOptions()).Compute(Input(0.5));
        double Ac(int i) => (Pc[i] - Rc[i]) / Nc[i];
        double Ar(int i) => (Pr[i] - Rr[i]) / Nr[i];
        AssertClose(Map(i => Math.Pow(Ac(i) - Ar(i) - 1, 2) - LogSig(0.5 * (Ac(i) - Ar(i)))), o.Losses);
        AssertClose(Map(i => 2 * 0.5 * Ac(i)), o.ChosenRewards);
    }

    [Fact]
    public void SigmoidGradientMatchesTheAnalyticDerivative()
    {
        using var scope = NewDisposeScope();
        const double beta = 0.1, eps = 0.1;
        var pc = tensor(Pc.Select(x => (float)x).ToArray()).requires_grad_(true);
        var pr = tensor(Pr.Select(x => (float)x).ToArray()).requires_grad_(true);
        var input = new PreferenceLossInput(pc, pr, tensor(Rc.Select(x => (float)x).ToArray()), tensor(Rr.Select(x => (float)x).ToArray()),
            tensor(Nc.Select(x => (float)x).ToArray()), tensor(Nr.Select(x => (float)x).ToArray()), beta);
        var o = PreferenceLosses.Create("sigmoid", new LossOptions { LabelSmoothing = eps }).Compute(input);
        o.Losses.mean().backward();
        // dL/dz = −(1−ε)·β·σ(−βz) + ε·β·σ(βz); z = (pc − pr) − (rc − rr); mean over P pairs.
        double[] dz = Map(i => ((-(1 - eps) * beta * Sig(-beta * DpoLogits(i))) + (eps * beta * Sig(beta * DpoLogits(i)))) / Pc.Length);
        AssertClose(dz, pc.grad!, 1e-5);
        AssertClose([.. dz.Select(x => -x)], pr.grad!, 1e-5);
    }

    [Fact]
    public void UnknownLossTypeSuggestsCloseNames()
    {
        var ex = Assert.Throws<DpoSharpException>(() => PreferenceLosses.Create("sigmod", new LossOptions()));
        Assert.Contains("sigmoid", ex.Message);
        Assert.Contains("loss_type", ex.Message);
        var mismatch = Assert.Throws<DpoSharpException>(() => PreferenceLosses.Create(["sigmoid", "ipo"], [1.0], new LossOptions()));
        Assert.Contains("loss_weights", mismatch.Message);
        Assert.Throws<DpoSharpException>(() => PreferenceLosses.Create(["sigmoid", "sigmoid"], null, new LossOptions()));
        Assert.Equal(18, PreferenceLosses.Names.Count);
    }
}
