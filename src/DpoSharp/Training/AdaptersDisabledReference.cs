using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Models.Lora;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>
/// The reference of a LoRA run (TRL's with a PEFT model and no <c>ref_model</c>): the policy itself with its adapters
/// disabled — exactly the frozen base model — in eval mode (no dropout, no random draws) under <c>no_grad</c>. No
/// second copy of the weights. Each call restores the adapters' and the module's previous modes. Does not own the model.
/// </summary>
/// <example>
/// <code>
/// model.Inject(new LoraOptions());
/// using var trainer = new DpoTrainer(model, refModel: null, args, pairs, padTokenId);
/// trainer.ReferenceLogProbs = new AdaptersDisabledReference(model);
/// trainer.Train();
/// </code>
/// </example>
public sealed class AdaptersDisabledReference : IReferenceLogProbs
{
    /// <summary>Uses <paramref name="policy"/> with its adapters disabled as the reference.</summary>
    /// <exception cref="DpoSharpException"><paramref name="policy"/> has no LoRA adapters (it would be its own reference).</exception>
    public AdaptersDisabledReference(ICausalLM policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (!policy.HasAdapters())
        {
            throw new DpoSharpException("the adapters-disabled reference needs a model with LoRA adapters (inject or load them first).");
        }

        Policy = policy;
    }

    /// <summary>The policy whose base is the reference.</summary>
    public ICausalLM Policy { get; }

    /// <inheritdoc/>
    public string Kind => "adapters_disabled";

    /// <inheritdoc/>
    public (Tensor Chosen, Tensor Rejected)? Compute(PreferenceBatch batch, Device device)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var module = Policy.Module;
        bool wasTraining = module.training;
        module.eval();
        try
        {
            using var _ = no_grad();
            using var disabled = Policy.DisableAdapters();
            var sums = ReferenceForward.SequenceSums(Policy, batch); // (2P)
            int p = batch.PairCount;
            return (sums[..p].to(device), sums[p..].to(device));
        }
        finally
        {
            module.train(wasTraining);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
