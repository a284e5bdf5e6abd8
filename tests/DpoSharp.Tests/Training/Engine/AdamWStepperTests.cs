using DpoSharp.Training;
using DpoSharp.Training.Engine;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Training.Engine;

public class AdamWStepperTests
{
    // Two parameter groups (decayed 2-D weights, undecayed 1-D) with their own gradients each step.
    private static (List<Parameter> Decay, List<Parameter> NoDecay) MakeParams(long seed)
    {
        using var gen = new Generator((ulong)seed, CPU);
        var decay = new List<Parameter> { new(randn([7, 5], generator: gen), requires_grad: true), new(randn([3, 4], generator: gen), requires_grad: true) };
        var noDecay = new List<Parameter> { new(randn([5], generator: gen), requires_grad: true) };
        return (decay, noDecay);
    }

    private static AdamW Optimizer(List<Parameter> decay, List<Parameter> noDecay, double lr) => optim.AdamW(
        [new AdamW.ParamGroup(decay, lr, 0.9, 0.999, 1e-8, 0.1), new AdamW.ParamGroup(noDecay, lr, 0.9, 0.999, 1e-8, 0.0)],
        lr, 0.9, 0.999, 1e-8, 0.1);

    private static void SetGrads(IEnumerable<Parameter> ps, int step)
    {
        foreach (var p in ps)
        {
            // A loss whose gradient differs per step and per element: sum(p^3 * (step + 1)) -> 3 (step + 1) p^2.
            using var scope = NewDisposeScope();
            (p.pow(3) * (step + 1)).sum().backward();
        }
    }

    // Bitwise equality (same shape, every element equal).
    private static bool Same(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }

    [Fact]
    public void StepIsBitIdenticalToTorchSharpAdamWAndKeepsItsState()
    {
        var (d1, n1) = MakeParams(3);
        var (d2, n2) = MakeParams(3);
        using var reference = Optimizer(d1, n1, 0.05);
        using var ours = Optimizer(d2, n2, 0.05);
        for (int step = 0; step < 4; step++)
        {
            // A changing learning rate, as the trainer's schedule sets it per group.
            foreach (var g in reference.ParamGroups.Concat(ours.ParamGroups))
            {
                g.LearningRate = 0.05 / (step + 1);
            }

            SetGrads(d1.Concat(n1), step);
            SetGrads(d2.Concat(n2), step);
            reference.step();
            AdamWStepper.Step(ours);
            reference.zero_grad();
            ours.zero_grad();
        }

        var (d0, n0) = MakeParams(3);
        foreach (var ((a, b), start) in d1.Concat(n1).Zip(d2.Concat(n2)).Zip(d0.Concat(n0)))
        {
            Assert.True(Same(a, b), "parameters differ from TorchSharp's AdamW");
            Assert.False(Same(a, start), "the optimizer did not move the parameters");
        }

        var sa = reference.state_dict().State.Cast<AdamW.State>().ToList();
        var sb = ours.state_dict().State.Cast<AdamW.State>().ToList();
        Assert.Equal(3, sb.Count);
        for (int i = 0; i < sa.Count; i++)
        {
            Assert.Equal(4, sb[i].step);
            Assert.Equal(sa[i].step, sb[i].step);
            Assert.True(Same(sa[i].exp_avg, sb[i].exp_avg));
            Assert.True(Same(sa[i].exp_avg_sq, sb[i].exp_avg_sq));
        }
    }
}
