using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>The AdamW set-up every trainer shares.</summary>
internal static class OptimizerFactory
{
    /// <summary>
    /// AdamW over <paramref name="trainable"/> with two parameter groups: weight decay on 2-D+ weights, none on
    /// biases and norm weights (1-D). Group order (decay, then no-decay) is the optimizer-state order checkpoints use.
    /// </summary>
    public static AdamW CreateAdamW(IReadOnlyList<Parameter> trainable, DpoOptions args)
    {
        var decay = trainable.Where(p => p.dim() >= 2).ToList();
        var noDecay = trainable.Where(p => p.dim() < 2).ToList();
        var groups = new List<AdamW.ParamGroup>();
        if (decay.Count > 0)
        {
            groups.Add(new AdamW.ParamGroup(decay, args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, args.WeightDecay));
        }

        if (noDecay.Count > 0)
        {
            groups.Add(new AdamW.ParamGroup(noDecay, args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, 0.0));
        }

        return optim.AdamW(groups, args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, args.WeightDecay);
    }
}
