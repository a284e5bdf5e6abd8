using DpoSharp.Data;
using DpoSharp.Losses;
using DpoSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Training;

/// <summary>
/// Where the reference log-probs of a batch come from: a frozen model (<see cref="FrozenModelReference"/>),
/// values computed once before training (<see cref="PrecomputedReference"/>), or nothing
/// (<see cref="NoReference"/>, reference-free losses), or the policy with its LoRA adapters disabled
/// (<see cref="AdaptersDisabledReference"/>).
/// </summary>
public interface IReferenceLogProbs : IDisposable
{
    /// <summary>Short name for logs: <c>frozen_model</c>, <c>precomputed</c>, <c>none</c>, <c>adapters_disabled</c>.</summary>
    string Kind { get; }

    /// <summary>
    /// Reference completion log-prob sums for the batch on <paramref name="device"/>: chosen (P) and rejected (P),
    /// fp32, without autograd history; null when there is no reference. Tensors belong to the caller's dispose scope.
    /// </summary>
    (Tensor Chosen, Tensor Rejected)? Compute(PreferenceBatch batch, Device device);
}

/// <summary>No reference model: losses see null reference log-probs (TRL's <c>reference_free</c>).</summary>
public sealed class NoReference : IReferenceLogProbs
{
    /// <inheritdoc/>
    public string Kind => "none";

    /// <inheritdoc/>
    public (Tensor Chosen, Tensor Rejected)? Compute(PreferenceBatch batch, Device device) => null;

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}

/// <summary>
/// A frozen reference model: every parameter has <c>requires_grad = false</c>, the module stays in <c>eval()</c>
/// (no dropout), and its forward runs under <c>no_grad</c>. Does not own the model unless <c>ownsModel</c>.
/// </summary>
public sealed class FrozenModelReference : IReferenceLogProbs
{
    private readonly bool _ownsModel;

    /// <summary>Freezes <paramref name="model"/> and uses it as the reference.</summary>
    public FrozenModelReference(ICausalLM model, bool ownsModel = false)
    {
        Model = model;
        _ownsModel = ownsModel;
        Freeze(model);
    }

    /// <summary>The reference model.</summary>
    public ICausalLM Model { get; }

    /// <inheritdoc/>
    public string Kind => "frozen_model";

    /// <summary>Sets <c>requires_grad = false</c> on every parameter and switches the module to <c>eval()</c>.</summary>
    public static void Freeze(ICausalLM model)
    {
        foreach (var p in model.Module.parameters())
        {
            p.requires_grad = false;
        }

        model.Module.eval();
    }

    /// <inheritdoc/>
    public (Tensor Chosen, Tensor Rejected)? Compute(PreferenceBatch batch, Device device)
    {
        using var _ = no_grad();
        Model.Module.eval();
        var sums = ReferenceForward.SequenceSums(Model, batch);
        int p = batch.PairCount;
        var chosen = sums[..p].to(device);
        var rejected = sums[p..].to(device);
        return (chosen, rejected);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsModel)
        {
            Model.Dispose();
        }
    }
}

/// <summary>Shared helper: one no-grad forward over a batch, returning the (2P) completion log-prob sums.</summary>
internal static class ReferenceForward
{
    public static Tensor SequenceSums(ICausalLM model, PreferenceBatch batch)
    {
        // Own scope: the reference logits (2P, T, V) are freed here, not kept alive through the policy's backward.
        using var scope = NewDisposeScope();
        var dev = model.Device;
        var at = batch.InputIds.device;
        var onDevice = at.type == dev.type && at.index == dev.index ? batch : batch.To(dev);
        return CompletionLogProbs.Forward(model, onDevice).LogProbs.Sums.detach().MoveToOuterDisposeScope();
    }
}
