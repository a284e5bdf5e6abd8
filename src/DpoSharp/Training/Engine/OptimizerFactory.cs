using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>An AdamW optimizer and the parameters it holds, in its state order (what checkpoints save).</summary>
/// <param name="Optimizer">The optimizer.</param>
/// <param name="Order">Parameters with their names, in optimizer-state order.</param>
public sealed record OptimizerSetup(AdamW Optimizer, IReadOnlyList<(string Name, Parameter Param)> Order)
{
    /// <summary>Each parameter's AdamW state with the parameter's name, in optimizer-state order.</summary>
    public IReadOnlyList<(string Name, AdamW.State State)> StatesInOrder()
    {
        var states = Optimizer.state_dict().State;
        if (states.Count != Order.Count)
        {
            throw new InvalidOperationException($"optimizer has {states.Count} states for {Order.Count} parameters");
        }

        return [.. Order.Select((p, i) => (p.Name, (AdamW.State)states[i]))];
    }
}

/// <summary>The AdamW set-up every objective shares; the one place that decides weight-decay groups.</summary>
public static class OptimizerFactory
{
    /// <summary>
    /// AdamW over <paramref name="trainable"/> with two parameter groups: weight decay on 2-D+ weights, none on
    /// biases and norm weights (1-D). The returned order (decay group, then no-decay group, each in
    /// <paramref name="trainable"/>'s order) is the optimizer-state order.
    /// </summary>
    /// <param name="trainable">Trainable parameters with their state-dict names.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="beta1">Adam β1.</param>
    /// <param name="beta2">Adam β2.</param>
    /// <param name="epsilon">Adam ε.</param>
    /// <param name="weightDecay">Decoupled weight decay of the decay group.</param>
    public static OptimizerSetup CreateAdamW(IReadOnlyList<(string Name, Parameter Param)> trainable, double learningRate, double beta1, double beta2, double epsilon, double weightDecay)
    {
        ArgumentNullException.ThrowIfNull(trainable);
        var decay = trainable.Where(p => p.Param.dim() >= 2).ToList();
        var noDecay = trainable.Where(p => p.Param.dim() < 2).ToList();
        var groups = new List<AdamW.ParamGroup>();
        if (decay.Count > 0)
        {
            groups.Add(new AdamW.ParamGroup(decay.Select(p => p.Param), learningRate, beta1, beta2, epsilon, weightDecay));
        }

        if (noDecay.Count > 0)
        {
            groups.Add(new AdamW.ParamGroup(noDecay.Select(p => p.Param), learningRate, beta1, beta2, epsilon, 0.0));
        }

        var optimizer = optim.AdamW(groups, learningRate, beta1, beta2, epsilon, weightDecay);
        return new OptimizerSetup(optimizer, [.. decay, .. noDecay]);
    }
}
