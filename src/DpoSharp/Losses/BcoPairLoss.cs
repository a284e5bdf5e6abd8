using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>
/// <c>bco_pair</c>: pairwise binary classifier optimisation (Jung et al., 2024): with rewards ρ = β·(log π − log π_ref)
/// and δ the running mean (over all batches so far, this one included) of each batch's mean reward,
/// −log σ(ρ_w − δ) − log σ(−(ρ_l − δ)). Stateful: every <c>Compute</c> updates δ, and checkpoints save it.
/// </summary>
public sealed class BcoPairLoss(LossOptions options) : PreferenceLossBase(options), IStatefulPreferenceLoss, IDisposable
{
    private readonly RunningMoments running = new();

    /// <inheritdoc/>
    public override string Name => LossTypes.BcoPair;

    /// <summary>The running reward statistics (δ is its mean).</summary>
    public RunningMoments Running => running;

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, double> SaveState() => running.SaveState();

    /// <inheritdoc/>
    public void LoadState(IReadOnlyDictionary<string, double> state) => running.LoadState(state);

    /// <inheritdoc/>
    public void Dispose() => running.Dispose();

    /// <inheritdoc/>
    protected override Tensor ComputeLosses(PreferenceTerms terms, double beta)
    {
        var chosen = terms.ChosenLogRatios * beta;
        var rejected = terms.RejectedLogRatios * beta;
        using (no_grad())
        {
            running.Update(cat([chosen.detach(), rejected.detach()], 0).mean());
        }

        var delta = running.Mean.to(chosen.device).to(chosen.dtype);
        return -nn.functional.logsigmoid(chosen - delta) - nn.functional.logsigmoid(-(rejected - delta));
    }
}
