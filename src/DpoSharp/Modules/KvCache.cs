using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>
/// Key/value cache for incremental decoding: one (K, V) pair per layer, each (B, n_kv_heads, T_cached, head_dim).
/// Owns its tensors (detached from dispose scopes); dispose it when generation ends.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] _keys;
    private readonly Tensor?[] _values;

    /// <summary>Creates an empty cache for <paramref name="layers"/> layers.</summary>
    public KvCache(int layers)
    {
        _keys = new Tensor?[layers];
        _values = new Tensor?[layers];
    }

    /// <summary>Number of positions already cached (0 when empty).</summary>
    public long Length => _keys[0] is null ? 0 : _keys[0]!.shape[2];

    /// <summary>
    /// Appends this step's keys/values for <paramref name="layer"/> and returns the full (cached + new) tensors.
    /// The returned tensors belong to the cache; do not dispose them.
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor keys, Tensor values)
    {
        var k = _keys[layer] is null ? keys.detach().clone() : cat([_keys[layer]!, keys.detach()], 2);
        var v = _values[layer] is null ? values.detach().clone() : cat([_values[layer]!, values.detach()], 2);
        _keys[layer]?.Dispose();
        _values[layer]?.Dispose();
        _keys[layer] = k.DetachFromDisposeScope();
        _values[layer] = v.DetachFromDisposeScope();
        return (_keys[layer]!, _values[layer]!);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        for (int i = 0; i < _keys.Length; i++)
        {
            _keys[i]?.Dispose();
            _values[i]?.Dispose();
            _keys[i] = null;
            _values[i] = null;
        }
    }
}
