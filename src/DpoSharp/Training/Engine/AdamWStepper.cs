using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>
/// Runs TorchSharp's <see cref="AdamW"/> update on the optimizer's own state, one parameter at a time.
/// <see cref="AdamW.step"/> keeps every parameter's temporaries (<c>sqrt(exp_avg_sq)</c> and its scaled copy, two
/// full-size tensors per parameter) in one dispose scope until all parameters are updated — about twice the model
/// size of transient memory. Here each parameter's single temporary is freed before the next parameter. The
/// arithmetic is the same operation sequence, so results are bit-identical to <see cref="AdamW.step"/>, and the
/// state objects (<c>step</c>, <c>exp_avg</c>, <c>exp_avg_sq</c>) stay the ones checkpoints save and load.
/// </summary>
internal static class AdamWStepper
{
    /// <summary>One AdamW step over every parameter group of <paramref name="optimizer"/> (amsgrad and maximize off).</summary>
    public static void Step(AdamW optimizer)
    {
        using var noGrad = no_grad();
        var states = optimizer.state_dict().State;
        int i = 0;
        foreach (var g in optimizer.ParamGroups)
        {
            var group = (AdamW.ParamGroup)g;
            var o = (AdamW.Options)group.Options;
            if (o.amsgrad == true || o.maximize == true)
            {
                throw new NotSupportedException("AdamWStepper supports amsgrad = false and maximize = false only.");
            }

            double beta1 = o.beta1!.Value, beta2 = o.beta2!.Value, eps = o.eps!.Value, wd = o.weight_decay!.Value, lr = o.LearningRate!.Value;
            foreach (var param in group.Parameters)
            {
                var state = (AdamW.State)states[i++];
                using var scope = NewDisposeScope();
                var grad = param.grad;
                if (grad is null)
                {
                    continue;
                }

                state.step += 1;

                // x * 1.0 == x exactly, so the decay multiply is skipped when it is the identity.
                double decay = 1 - (lr * wd);
                if (decay != 1.0)
                {
                    param.mul_(decay);
                }

                double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
                double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
                state.exp_avg.mul_(beta1).add_(grad, alpha: 1 - beta1);
                state.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2);

                // (sqrt(v) / sqrt(bc2)) + eps, computed in place in one temporary (same elementwise ops as AdamW.step).
                var denom = state.exp_avg_sq.sqrt().div_(Math.Sqrt(biasCorrection2)).add_(eps);
                double stepSize = lr / biasCorrection1;
                param.addcdiv_(state.exp_avg, denom, value: -stepSize);
            }
        }
    }
}
