using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Training.Engine;

/// <summary>Gradient-norm clipping as <c>torch.nn.utils.clip_grad_norm_</c>.</summary>
public static class GradientClipping
{
    /// <summary>
    /// The 2-norm of the per-parameter gradient 2-norms (computed in fp32); when <paramref name="maxNorm"/> &gt; 0,
    /// scales every gradient by min(1, max / (norm + 1e-6)). Returns the norm before clipping (a 0-d tensor); call
    /// under <c>no_grad</c>.
    /// </summary>
    public static Tensor ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm, Device device)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0)
        {
            return zeros(1, device: device).squeeze();
        }

        var total = stack(grads.Select(g => linalg.vector_norm(g.to(ScalarType.Float32))).ToArray()).norm();
        if (maxNorm > 0)
        {
            var coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
            foreach (var g in grads)
            {
                g.mul_(coef.to(g.dtype));
            }
        }

        return total;
    }
}
