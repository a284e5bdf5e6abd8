using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Modules;

/// <summary>The LoRA adapter on a <see cref="Linear"/> and on GPT-2's transposed <see cref="Conv1D"/>.</summary>
public class LoraAdapterTests
{
    private const int In = 12;
    private const int Out = 10;

    private static Linear RandomLinear(bool bias, Generator gen)
    {
        var l = new Linear(In, Out, bias, CPU, ScalarType.Float32);
        Fill(l, gen);
        return l;
    }

    private static Conv1D RandomConv1D(Generator gen)
    {
        var c = new Conv1D(In, Out, CPU, ScalarType.Float32);
        Fill(c, gen);
        return c;
    }

    private static void Fill(nn.Module m, Generator gen)
    {
        using var _ = no_grad();
        foreach (var p in m.parameters())
        {
            using var v = empty(p.shape).normal_(0, 0.5, gen);
            p.copy_(v);
        }
    }

    private static LoraAdapter Adapter(Generator gen, double dropout = 0, bool randomB = true)
    {
        var a = new LoraAdapter(In, Out, rank: 4, alpha: 8, dropout, CPU, ScalarType.Float32, gen);
        if (randomB)
        {
            using var _ = no_grad();
            using var b = empty(a.B.shape).normal_(0, 0.5, gen);
            a.B.copy_(b);
        }

        return a;
    }

    public static TheoryData<bool> Layouts => new() { false, true };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void DisabledOrFreshAdaptersGiveExactlyTheBaseOutputAndEnabledOnesAddScaledBA(bool conv1D)
    {
        using var gen = new Generator(5);
        ILoraTarget layer = conv1D ? RandomConv1D(gen) : RandomLinear(bias: true, gen);
        var module = (nn.Module<Tensor, Tensor>)layer;
        module.eval();
        using var x = empty(3, 5, In).normal_(0, 1, gen);          // (B, T, in)
        using var plain = module.call(x);                           // (B, T, out)

        // A fresh adapter (B = 0) is the identity.
        using var fresh = new LoraAdapter(In, Out, rank: 4, alpha: 8, dropout: 0.1, CPU, ScalarType.Float32, gen);
        layer.AttachLora(fresh);
        using (var y = module.call(x))
        {
            Assert.True(TensorBits.Identical(y, plain));
        }

        layer.AttachLora(null);
        var adapter = Adapter(gen);
        layer.AttachLora(adapter);
        using (var y = module.call(x))
        {
            // y = base(x) + B(A x) · alpha / r
            using var expected = plain + (matmul(matmul(x, adapter.A.t()), adapter.B.t()) * 2.0);
            Assert.True(y.allclose(expected, rtol: 1e-5, atol: 1e-5));
            Assert.False(y.allclose(plain, rtol: 1e-3, atol: 1e-3));
        }

        adapter.Enabled = false;
        using (var y = module.call(x))
        {
            Assert.True(TensorBits.Identical(y, plain));
        }

        // The merged weight (W + alpha/r·B·A, transposed for Conv1D) reproduces the enabled adapter.
        adapter.Enabled = true;
        using var enabled = module.call(x);
        using (no_grad())
        using (var delta = adapter.DeltaWeight())  // (out, in)
        {
            Assert.Equal([Out, In], delta.shape);
            layer.Weight.add_(layer.FanInFanOut ? delta.t() : delta);
        }

        layer.AttachLora(null);
        using var merged = module.call(x);
        Assert.True(merged.allclose(enabled, rtol: 1e-5, atol: 1e-5));
        adapter.Dispose();
    }

    [Fact]
    public void ShapesAndInitialValuesFollowPeft()
    {
        using var gen = new Generator(1);
        using var a = new LoraAdapter(256, Out, rank: 8, alpha: 16, dropout: 0.05, CPU, ScalarType.Float32, gen);
        Assert.Equal([8L, 256], a.A.shape);        // r × in
        Assert.Equal([(long)Out, 8], a.B.shape);   // out × r
        Assert.Equal(2.0, a.Scaling);
        Assert.True(a.Enabled);
        Assert.Equal(0, a.B.abs().sum().item<float>());

        // Kaiming-uniform with a = √5: U(−1/√in, 1/√in), std = bound / √3.
        double bound = 1 / Math.Sqrt(256);
        Assert.True(a.A.abs().max().item<float>() <= bound);
        Assert.Equal(bound / Math.Sqrt(3), a.A.std().item<float>(), 0.1 * bound);
        Assert.All(a.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void TheAdapterIsAChildNamedLoraAndTheBaseNamesStay()
    {
        using var gen = new Generator(2);
        using var layer = RandomLinear(bias: true, gen);
        Assert.Equal(["weight", "bias"], layer.state_dict().Keys);
        var adapter = Adapter(gen);
        layer.AttachLora(adapter);
        Assert.Same(adapter, layer.Lora);
        Assert.Equal(["weight", "bias", "lora.lora_A", "lora.lora_B"], layer.state_dict().Keys);
        Assert.All(layer.named_parameters().Where(p => p.name.StartsWith("lora.", StringComparison.Ordinal)), p => Assert.True(LoraAdapter.IsAdapterParameter(p.name)));
        Assert.False(LoraAdapter.IsAdapterParameter("model.layers.0.self_attn.q_proj.weight"));
        Assert.True(LoraAdapter.IsAdapterParameter("model.layers.0.self_attn.q_proj.lora.lora_B"));

        layer.AttachLora(null);
        Assert.Null(layer.Lora);
        Assert.Equal(["weight", "bias"], layer.state_dict().Keys);
        adapter.Dispose();

        using var wrong = new LoraAdapter(In + 1, Out, 2, 2, 0, CPU, ScalarType.Float32);
        Assert.Throws<ArgumentException>(() => layer.AttachLora(wrong));
    }

    [Fact]
    public void DropoutActsOnTheAdapterInputOnlyAndOnlyInTrainingMode()
    {
        using var gen = new Generator(3);
        using var layer = RandomLinear(bias: false, gen);
        using var x = empty(4, 6, In).normal_(0, 1, gen);
        using var plain = layer.call(x);
        var adapter = Adapter(gen, dropout: 0.5);
        layer.AttachLora(adapter);
        layer.eval();
        using var evalOut = layer.call(x);
        using var expected = plain + (matmul(matmul(x, adapter.A.t()), adapter.B.t()) * 2.0);
        Assert.True(evalOut.allclose(expected, rtol: 1e-5, atol: 1e-5));

        layer.train();
        Assert.True(adapter.training);
        using var trainOut = layer.call(x);
        Assert.False(trainOut.allclose(evalOut, rtol: 1e-3, atol: 1e-3));

        // Disabled in training mode: exactly the base, no dropout on the base path.
        adapter.Enabled = false;
        using var disabled = layer.call(x);
        Assert.True(TensorBits.Identical(disabled, plain));
    }

    [Fact]
    public void GradientsReachOnlyTheAdapterWhenTheBaseIsFrozen()
    {
        using var gen = new Generator(4);
        using var layer = RandomLinear(bias: true, gen);
        layer.Weight.requires_grad = false;
        layer.Bias!.requires_grad = false;
        var adapter = Adapter(gen, randomB: false);
        layer.AttachLora(adapter);
        using var x = empty(2, In).normal_(0, 1, gen);
        layer.call(x).sum().backward();
        Assert.Null(layer.Weight.grad);
        Assert.NotNull(adapter.B.grad);          // dL/dB = (A x)ᵀ: non-zero although B = 0
        Assert.True(adapter.B.grad!.abs().sum().item<float>() > 0);
        Assert.Equal(0, adapter.A.grad!.abs().sum().item<float>()); // dL/dA goes through B = 0
    }
}
