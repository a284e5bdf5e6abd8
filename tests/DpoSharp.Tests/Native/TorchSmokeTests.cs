using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Native;

public class TorchSmokeTests
{
    [Fact]
    public void ForwardBackwardGivesTheAnalyticGradient()
    {
        DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();
        using var scope = NewDisposeScope();

        // f(w) = sum(tanh(A w)^2) with A = [[1, 2], [3, 4]], w = [0.1, -0.2].
        var a = tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        var w = tensor(new float[] { 0.1f, -0.2f }).requires_grad_(true);
        var z = a.matmul(w);                       // (2,)
        var f = z.tanh().pow(2).sum();
        f.backward();

        // Independent: df/dw = A^T (2 tanh(z) (1 - tanh(z)^2)), computed in double here.
        double[] zd = [1 * 0.1 + 2 * -0.2, 3 * 0.1 + 4 * -0.2];
        double[] g = zd.Select(v => 2 * Math.Tanh(v) * (1 - (Math.Tanh(v) * Math.Tanh(v)))).ToArray();
        double[] expected = [(1 * g[0]) + (3 * g[1]), (2 * g[0]) + (4 * g[1])];
        double expectedF = zd.Sum(v => Math.Tanh(v) * Math.Tanh(v));

        Assert.Equal(expectedF, f.item<float>(), 5);
        var grad = w.grad!.data<float>().ToArray();
        Assert.Equal(expected[0], grad[0], 5);
        Assert.Equal(expected[1], grad[1], 5);
    }

    [Fact]
    public void AdamWStepMovesAgainstTheGradient()
    {
        DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();
        using var scope = NewDisposeScope();
        var p = new TorchSharp.Modules.Parameter(tensor(new float[] { 1f, -1f }));
        var opt = optim.AdamW([p], lr: 0.1, weight_decay: 0);
        var loss = (p * p).sum();
        loss.backward();
        opt.step();

        // Adam's first step moves each weight by lr * sign(grad) (bias-corrected m/sqrt(v) = ±1).
        var after = p.data<float>().ToArray();
        Assert.Equal(0.9f, after[0], 4);
        Assert.Equal(-0.9f, after[1], 4);
    }
}
