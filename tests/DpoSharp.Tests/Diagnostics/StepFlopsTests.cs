using DpoSharp.Diagnostics;

namespace DpoSharp.Tests.Diagnostics;

/// <summary><see cref="StepFlops"/> and <see cref="FlopShape"/> against hand counts for the tiny gpt2 and llama configs.</summary>
public class StepFlopsTests
{
    public StepFlopsTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    [Fact]
    public void TheTinyGpt2ShapeCountsItsDecoderMatmulsAndTheHeadByHand()
    {
        using var model = TinyModels.Create("gpt2");
        var shape = FlopShape.FromModel(model);

        // Per layer (hidden 32, MLP 4·32 = 128): c_attn 32×96, attn c_proj 32×32, c_fc 32×128, mlp c_proj 128×32.
        long perLayer = (32 * 96) + (32 * 32) + (32 * 128) + (128 * 32);
        Assert.Equal(2 * perLayer, shape.LinearParameters);
        Assert.Equal(32L * 260, shape.LmHeadParameters);
        Assert.Equal(2, shape.Layers);
        Assert.Equal(32, shape.AttentionWidth);
    }

    [Fact]
    public void TheTinyLlamaShapeCountsGroupedQueryAndGatedMlpWeights()
    {
        using var model = TinyModels.Create("llama");
        var shape = FlopShape.FromModel(model);

        // Hidden 32, 4 heads of 8, 2 KV heads (k, v: 32×16), gated MLP of 64: q, k, v, o + gate, up, down.
        long perLayer = (32 * 32) + (2 * 32 * 16) + (32 * 32) + (3 * 32 * 64);
        Assert.Equal(2 * perLayer, shape.LinearParameters);
        Assert.Equal(32, shape.AttentionWidth);
    }

    [Fact]
    public void APairsForwardAndADpoStepMatchAHandCount()
    {
        // N = 1000 linear weights, head D·V = 100, 2 layers, attention width 4; prompt 3, completions 2 and 1.
        var shape = new FlopShape(1000, 100, 2, 4);

        // Prefix sharing: tokens 3 + 2 + 1 = 6; attention pairs: prompt 1+2+3 = 6, chosen (4 + 5), rejected 4: 19;
        // logits at 3 positions (one per completion token).
        double shared = (2.0 * 1000 * 6) + (2.0 * 100 * 3) + (4.0 * 2 * 4 * 19);
        Assert.Equal(shared, StepFlops.PairForward(shape, 3, 2, 1, prefixSharing: true));

        // Two sequences of 5 and 4 tokens: attention 15 + 10 pairs; the same 3 logit positions.
        double twice = (2.0 * 1000 * 9) + (2.0 * 100 * 3) + (4.0 * 2 * 4 * 25);
        Assert.Equal(twice, StepFlops.PairForward(shape, 3, 2, 1, prefixSharing: false));

        // Without a prompt the first token of each completion is not predicted: logits at (2 − 1) + (1 − 1) positions.
        Assert.Equal((2.0 * 1000 * 3) + (2.0 * 100 * 1) + (4.0 * 2 * 4 * (3 + 1)), StepFlops.PairForward(shape, 0, 2, 1, prefixSharing: true));

        // A step: policy forward + backward (3×) and the reference forward (1×); cached reference: 3× only; a frozen
        // (LoRA) policy 2×.
        double pair = StepFlops.PairForward(shape, 3, 2, 2, prefixSharing: true);
        Assert.Equal(4 * 4 * pair, StepFlops.DpoStep(shape, 4, 3, 2, prefixSharing: true, cachedReference: false));
        Assert.Equal(3 * 4 * pair, StepFlops.DpoStep(shape, 4, 3, 2, prefixSharing: true, cachedReference: true));
        Assert.Equal(3 * 4 * pair, StepFlops.DpoStep(shape, 4, 3, 2, prefixSharing: true, cachedReference: false, frozenPolicyWeights: true));
    }
}
