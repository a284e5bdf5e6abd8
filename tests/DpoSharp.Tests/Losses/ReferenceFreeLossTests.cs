using DpoSharp.Losses;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Losses;

/// <summary>
/// <c>orpo</c>, <c>simpo</c> and <c>cpo</c> against TRL's formulas (ORPOTrainer.odds_ratio_loss, CPOTrainer.cpo_loss)
/// re-derived here in doubles from hand-made log-prob sums and token counts, plus their analytic gradients.
/// </summary>
public class ReferenceFreeLossTests
{
    // Three pairs: policy log-prob sums and completion token counts (chosen lengths differ on purpose).
    private static readonly double[] Sc = [-2.0, -9.0, -1.2];
    private static readonly double[] Sr = [-3.0, -4.0, -6.0];
    private static readonly double[] Nc = [2, 6, 3];
    private static readonly double[] Nr = [3, 2, 4];

    public ReferenceFreeLossTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static double LogSig(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    private static double Sig(double x) => Math.Exp(LogSig(x));

    private static double C(int i) => Sc[i] / Nc[i];

    private static double R(int i) => Sr[i] / Nr[i];

    // TRL's batch NLL is −Σ s_c / Σ n_c; a pair's share is −s_i / mean(n).
    private static double NllShare(int i) => -Sc[i] / Nc.Average();

    private static double LogOdds(int i) => (C(i) - R(i)) - (Math.Log(1 - Math.Exp(C(i))) - Math.Log(1 - Math.Exp(R(i))));

    private static double[] Map(Func<int, double> f) => [.. Enumerable.Range(0, Sc.Length).Select(f)];

    private static (PreferenceLossInput Input, Tensor Sc, Tensor Sr) Input(double beta, bool withReference = false)
    {
        static Tensor T(double[] v, bool grad = false) => tensor(v.Select(x => (float)x).ToArray()).requires_grad_(grad);
        var sc = T(Sc, true);
        var sr = T(Sr, true);
        // Reference values are ignored by these losses even when given.
        return (new PreferenceLossInput(sc, sr, withReference ? T([-50, -50, -50]) : null, withReference ? T([1, 1, 1]) : null, T(Nc), T(Nr), beta), sc, sr);
    }

    private static double[] Read(Tensor t) => [.. t.detach().to(ScalarType.Float64).data<double>()];

    private static void AssertClose(double[] expected, Tensor actual, double tol = 1e-4)
    {
        var a = Read(actual);
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - a[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"[{i}] expected {expected[i]}, got {a[i]}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void OrpoIsChosenNllMinusBetaLogSigmoidOfTheLogOddsRatio(bool withReference)
    {
        using var scope = NewDisposeScope();
        const double beta = 0.25;
        var (input, sc, sr) = Input(beta, withReference);
        var o = PreferenceLosses.Create(LossTypes.Orpo, new LossOptions()).Compute(input);

        AssertClose(Map(i => NllShare(i) - (beta * LogSig(LogOdds(i)))), o.Losses);
        // The mean of the per-pair losses is TRL's loss: batch NLL − mean(β·log σ(log-odds)).
        double trl = (-Sc.Sum() / Nc.Sum()) - Map(i => beta * LogSig(LogOdds(i))).Average();
        AssertClose([trl], o.Losses.mean().reshape(1));
        AssertClose(Map(i => beta * C(i)), o.ChosenRewards);
        AssertClose(Map(i => beta * R(i)), o.RejectedRewards);
        AssertClose([-Sc.Sum() / Nc.Sum()], o.NllLoss!.reshape(1));
        AssertClose(Map(i => LogSig(LogOdds(i))), o.PairStatistics!["log_odds_ratio"]);
        AssertClose(Map(i => LogOdds(i)), o.PairStatistics!["log_odds_chosen"]);

        // Gradient of Σ losses: d/ds_c = −β(1−σ(L))/(1−e^c)/n_c − 1/mean(n); d/ds_r = β(1−σ(L))·(1/(1−e^r))/n_r.
        o.Losses.sum().backward();
        AssertClose(Map(i => (-beta * (1 - Sig(LogOdds(i))) / (1 - Math.Exp(C(i))) / Nc[i]) - (1 / Nc.Average())), sc.grad!);
        AssertClose(Map(i => beta * (1 - Sig(LogOdds(i))) / (1 - Math.Exp(R(i))) / Nr[i]), sr.grad!);
    }

    [Fact]
    public void OrpoStaysFiniteWhenACompletionIsCertain()
    {
        using var scope = NewDisposeScope();
        var input = new PreferenceLossInput(tensor(new[] { 0f, -1e-7f }), tensor(new[] { -1f, 0f }), null, null, tensor(new[] { 2f, 2 }), tensor(new[] { 2f, 2 }), 0.1);
        var o = PreferenceLosses.Create(LossTypes.Orpo, new LossOptions()).Compute(input);
        Assert.All(Read(o.Losses), v => Assert.True(double.IsFinite(v)));
    }

    [Theory]
    [InlineData(0.5, 1.0, 0.0)]
    [InlineData(1.2, 0.0, 0.0)]
    [InlineData(0.0, 0.3, 0.1)]
    public void SimpoIsLogisticLossOnPerTokenMarginMinusGammaPlusCpoAlphaNll(double gamma, double alpha, double eps)
    {
        using var scope = NewDisposeScope();
        const double beta = 2.0;
        var (input, sc, sr) = Input(beta);
        var o = PreferenceLosses.Create(LossTypes.Simpo, new LossOptions { SimpoGamma = gamma, CpoAlpha = alpha, LabelSmoothing = eps }).Compute(input);
        double Z(int i) => (beta * (C(i) - R(i))) - gamma;
        AssertClose(Map(i => (-(1 - eps) * LogSig(Z(i))) - (eps * LogSig(-Z(i))) + (alpha * NllShare(i))), o.Losses);
        AssertClose(Map(i => beta * C(i)), o.ChosenRewards);
        AssertClose(Map(i => beta * R(i)), o.RejectedRewards);
        Assert.Equal(alpha != 0, o.NllLoss is not null);

        // d/ds_c = [−(1−ε)(1−σ(z)) + ε σ(z)]·β/n_c − α/mean(n).
        o.Losses.sum().backward();
        AssertClose(Map(i => (((-(1 - eps) * (1 - Sig(Z(i)))) + (eps * Sig(Z(i)))) * beta / Nc[i]) - (alpha / Nc.Average())), sc.grad!);
        AssertClose(Map(i => (((1 - eps) * (1 - Sig(Z(i)))) - (eps * Sig(Z(i)))) * beta / Nr[i]), sr.grad!);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.0)]
    public void CpoIsLogisticLossOnSummedLogProbsPlusCpoAlphaNll(double alpha)
    {
        using var scope = NewDisposeScope();
        const double beta = 0.1;
        var (input, sc, _) = Input(beta, withReference: true);
        var o = PreferenceLosses.Create(LossTypes.Cpo, new LossOptions { CpoAlpha = alpha }).Compute(input);
        double Z(int i) => beta * (Sc[i] - Sr[i]);
        AssertClose(Map(i => -LogSig(Z(i)) + (alpha * NllShare(i))), o.Losses);
        AssertClose(Map(i => beta * Sc[i]), o.ChosenRewards);
        AssertClose(Map(i => beta * Sr[i]), o.RejectedRewards);
        o.Losses.sum().backward();
        AssertClose(Map(i => (-(1 - Sig(Z(i))) * beta) - (alpha / Nc.Average())), sc.grad!);
    }

    [Fact]
    public void APairAloneGetsItsOwnPerTokenNll()
    {
        using var scope = NewDisposeScope();
        var one = new PreferenceLossInput(tensor(new[] { -9f }), tensor(new[] { -4f }), null, null, tensor(new[] { 6f }), tensor(new[] { 2f }), 0.1);
        var o = PreferenceLosses.Create(LossTypes.Cpo, new LossOptions()).Compute(one);
        AssertClose([-LogSig(0.1 * (-9 + 4)) + (9.0 / 6)], o.Losses);
    }

    [Fact]
    public void ReferenceFreeLossTypesNeedNoReferenceAndStandAlone()
    {
        var o = new DpoSharp.Training.DpoOptions { LossType = [LossTypes.Simpo] };
        Assert.False(o.Objective.NeedsReference);
        o.Validate();
        Assert.True(new DpoSharp.Training.DpoOptions().Objective.NeedsReference);
        Assert.Contains("alone", Assert.Throws<DpoSharpException>(() => new DpoSharp.Training.DpoOptions { LossType = [LossTypes.Orpo, LossTypes.Sigmoid] }.Validate()).Message);
        Assert.Contains("ref_model", Assert.Throws<DpoSharpException>(() => new DpoSharp.Training.DpoOptions { LossType = [LossTypes.Cpo], RefModel = "x" }.Validate()).Message);
        Assert.Contains("rpo_alpha", Assert.Throws<DpoSharpException>(() => new DpoSharp.Training.DpoOptions { LossType = [LossTypes.Cpo], RpoAlpha = 1 }.Validate()).Message);
        Assert.Contains("cpo_alpha", Assert.Throws<DpoSharpException>(() => new DpoSharp.Training.DpoOptions { LossType = [LossTypes.Simpo], CpoAlpha = -1 }.Validate()).Message);
    }
}
