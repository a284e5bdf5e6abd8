namespace DpoSharp.Losses;

/// <summary>
/// A loss with state that evolves over training (e.g. <c>bco_pair</c>'s running reward mean). Checkpoints save the
/// state and resume restores it, so a resumed run computes the same losses as an uninterrupted one.
/// </summary>
public interface IStatefulPreferenceLoss
{
    /// <summary>The state as named numbers (JSON-friendly). Reading it may synchronise with the device.</summary>
    IReadOnlyDictionary<string, double> SaveState();

    /// <summary>Restores a state produced by <see cref="SaveState"/>; throws <see cref="DpoSharpException"/> on missing keys.</summary>
    void LoadState(IReadOnlyDictionary<string, double> state);
}
