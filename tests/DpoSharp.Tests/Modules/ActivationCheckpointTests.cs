using DpoSharp.Losses;
using DpoSharp.Models;
using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Modules;

/// <summary>
/// Gradient checkpointing (<see cref="ActivationCheckpoint"/>, <see cref="CausalLMBase.GradientCheckpointing"/>):
/// the recomputation in the backward gives the plain run's loss and every parameter's gradient, for every
/// architecture (padding masks, RoPE tables, mistral's sliding window), with a frozen input, and with dropout
/// (the same mask is replayed).
/// </summary>
[Collection(nameof(DpoSharp.Tests.Training.TorchRngCollection))]
public class ActivationCheckpointTests
{
    public ActivationCheckpointTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static (double Loss, Dictionary<string, float[]> Grads) Step(CausalLMBase model, DpoSharp.Data.PreferenceBatch batch)
    {
        using var scope = NewDisposeScope();
        TinyModels.ZeroGradients(model);
        var lp = CompletionLogProbs.Forward(model, batch).LogProbs;
        var loss = -(lp.Sums * arange(1, lp.Sums.shape[0] + 1, ScalarType.Float32)).sum() / 7;
        loss.backward();
        return (loss.item<float>(), TinyModels.Gradients(model));
    }

    [Theory]
    [AllModelTypes]
    public void CheckpointedGradientsEqualPlainOnes(string type)
    {
        using var model = TinyModels.Create(type);
        using var batch = TinyModels.Batch();
        var (plainLoss, plain) = Step(model, batch);
        model.GradientCheckpointing = true;
        var (loss, grads) = Step(model, batch);
        Assert.Equal(plainLoss, loss);
        Assert.All(plain.Values, g => Assert.Contains(g, x => x != 0));
        var (diff, scale) = TinyModels.Compare(grads, plain);
        Assert.True(diff <= 1e-6 * Math.Max(1, scale), $"{type}: max gradient difference {diff} (largest gradient {scale})");
    }

    [Fact]
    public void CheckpointedFullLogitsPathAndFrozenEmbeddingsGiveThePlainGradients()
    {
        // Frozen embeddings: the first layer's input needs no gradient, its parameters do (LoRA-like).
        using var model = TinyModels.Create("llama");
        using var batch = TinyModels.Batch();
        model.LogitsChunkSize = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            p.requires_grad = !name.Contains("embed_tokens", StringComparison.Ordinal);
        }

        var (plainLoss, plain) = Step(model, batch);
        model.GradientCheckpointing = true;
        var (loss, grads) = Step(model, batch);
        Assert.Equal(plainLoss, loss);
        Assert.Contains(plain["model.layers.0.self_attn.q_proj.weight"], x => x != 0);
        var (diff, scale) = TinyModels.Compare(grads, plain);
        Assert.True(diff <= 1e-6 * Math.Max(1, scale), $"max gradient difference {diff} (largest gradient {scale})");
    }

    [Fact]
    public void DropoutReplaysTheSameMaskAndLeavesTheGeneratorWhereThePlainRunDoes()
    {
        using var scope = NewDisposeScope();
        var weight = randn(6, 6).requires_grad_(true);
        var x0 = randn(4, 6);
        Tensor Block(Tensor x, IReadOnlyList<Tensor?> _) => nn.functional.dropout(nn.functional.linear(x, weight).tanh(), 0.5, training: true) * 3;

        (float[] Y, float[] Dw, float[] Dx, float Next) Run(bool checkpoint)
        {
            weight.grad?.zero_();
            random.manual_seed(11);
            var x = x0.clone().requires_grad_(true);
            var y = checkpoint ? ActivationCheckpoint.Run(Block, x, [], [weight]) : Block(x, []);
            (y * y).sum().backward();
            var next = rand(1).item<float>();
            return (y.detach().data<float>().ToArray(), weight.grad!.data<float>().ToArray(), x.grad!.data<float>().ToArray(), next);
        }

        var plain = Run(checkpoint: false);
        var ckpt = Run(checkpoint: true);
        Assert.Contains(plain.Y, v => v == 0);   // dropout did drop
        Assert.Equal(plain.Y, ckpt.Y);
        Assert.Equal(plain.Dw, ckpt.Dw);
        Assert.Equal(plain.Dx, ckpt.Dx);
        Assert.Equal(plain.Next, ckpt.Next);
    }

    [Fact]
    public void NoTensorLeaksAcrossCheckpointedSteps()
    {
        using var model = TinyModels.Create("qwen2");
        using var batch = TinyModels.Batch();
        model.GradientCheckpointing = true;
        model.LogitsChunkSize = 4;
        var live = new List<long>();
        for (int i = 0; i < 4; i++)
        {
            Step(model, batch);
            live.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }

        Assert.All(live.Skip(2), c => Assert.Equal(live[1], c));
    }
}
