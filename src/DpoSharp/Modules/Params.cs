using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>Parameter factory shared by the layers: uninitialised storage (weights are loaded or initialised afterwards).</summary>
internal static class Params
{
    public static Parameter Empty(long[] shape, Device device, ScalarType dtype) =>
        new(empty(shape, dtype, device), requires_grad: true);
}
