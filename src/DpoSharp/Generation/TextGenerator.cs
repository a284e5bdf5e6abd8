using DpoSharp.Models;
using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Generation;

/// <summary>Decoding options. <see cref="Validate"/> checks them all.</summary>
public sealed class GenerationOptions
{
    /// <summary>Most tokens to generate. <value>Default 64.</value></summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>Softmax temperature; 0 means greedy (argmax). <value>Default 0 (greedy).</value></summary>
    public double Temperature { get; init; }

    /// <summary>Keep only the K most likely tokens when sampling; 0 = off. <value>Default 0.</value></summary>
    public int TopK { get; init; }

    /// <summary>Nucleus sampling: keep the smallest set of tokens whose probability reaches P; 1 = off. <value>Default 1.</value></summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Random seed for sampling. <value>Default 0.</value></summary>
    public long Seed { get; init; }

    /// <summary>Token ids that end generation (included in the output); null = the config's eos_token_id(s).
    /// <value>Default null.</value></summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 1)
        {
            throw new DpoSharpException($"--max-new-tokens must be at least 1 (got {MaxNewTokens}).");
        }

        if (!(Temperature >= 0) || double.IsInfinity(Temperature))
        {
            throw new DpoSharpException($"--temperature must be a finite number >= 0 (0 = greedy; got {Temperature}).");
        }

        if (TopK < 0)
        {
            throw new DpoSharpException($"--top-k must be >= 0 (0 = off; got {TopK}).");
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            throw new DpoSharpException($"--top-p must be in (0, 1] (1 = off; got {TopP}).");
        }
    }
}

/// <summary>Autoregressive decoding with a KV cache: greedy, or sampling with temperature, top-k and top-p.</summary>
public static class TextGenerator
{
    /// <summary>
    /// Generates up to <see cref="GenerationOptions.MaxNewTokens"/> tokens after <paramref name="promptIds"/>
    /// (under inference mode). Stops after a stop token (which is included). <paramref name="onToken"/> sees each
    /// new token as it is produced. Returns the new tokens only.
    /// </summary>
    /// <exception cref="DpoSharpException">Invalid options, an empty prompt, ids outside the vocabulary, or a
    /// prompt beyond a learned-position model's max_position_embeddings. Generation stops at
    /// max_position_embeddings tokens in all (rotary models: at least one new token).</exception>
    public static IReadOnlyList<int> Generate(ICausalLM model, IReadOnlyList<int> promptIds, GenerationOptions options, Action<int>? onToken = null)
    {
        options.Validate();
        var cfg = model.Config;
        if (promptIds.Count == 0)
        {
            throw new DpoSharpException("the prompt is empty: give at least one token.");
        }

        if (promptIds.Any(i => i < 0 || i >= cfg.VocabSize))
        {
            throw new DpoSharpException($"prompt token id {promptIds.First(i => i < 0 || i >= cfg.VocabSize)} is outside the model's vocabulary (0..{cfg.VocabSize - 1}).");
        }

        int maxNew = options.MaxNewTokens;
        if (cfg.ModelType == "gpt2" && promptIds.Count + maxNew > cfg.MaxPositionEmbeddings)
        {
            maxNew = cfg.MaxPositionEmbeddings - promptIds.Count;
            if (maxNew < 1)
            {
                throw new DpoSharpException($"the prompt has {promptIds.Count} tokens; this model has only {cfg.MaxPositionEmbeddings} positions.");
            }
        }
        else if (promptIds.Count + maxNew > cfg.MaxPositionEmbeddings)
        {
            // Rotary models run past max_position_embeddings, but beyond the trained context the text degrades and the
            // KV cache grows without bound: stop there (at least one new token).
            maxNew = Math.Max(1, cfg.MaxPositionEmbeddings - promptIds.Count);
        }

        var stop = new HashSet<int>(options.StopTokenIds ?? cfg.EosTokenIds);
        var device = model.Device;
        var output = new List<int>();
        using var inference = inference_mode();
        using var cache = new KvCache(cfg.NumLayers);
        using var gen = options.Temperature > 0 ? new Generator((ulong)options.Seed, CPU) : null;
        var next = tensor(promptIds.Select(i => (long)i).ToArray(), device: device).unsqueeze(0); // (1, T)
        for (int step = 0; step < maxNew; step++)
        {
            int token;
            using (var scope = NewDisposeScope())
            {
                var logits = model.Forward(next, cache: cache)[0, -1];    // (V)
                token = options.Temperature > 0 ? Sample(logits, options, gen!) : (int)logits.argmax().item<long>();
            }

            next.Dispose();
            output.Add(token);
            onToken?.Invoke(token);
            if (stop.Contains(token))
            {
                break;
            }

            next = tensor(new long[] { token }, device: device).unsqueeze(0); // (1, 1)
        }

        next.Dispose();
        return output;
    }

    /// <summary>Samples one token from <paramref name="logits"/> (V) after temperature, top-k and top-p filtering
    /// (sampling runs on the CPU with <paramref name="generator"/>, a CPU generator).</summary>
    public static int Sample(Tensor logits, GenerationOptions options, Generator generator)
    {
        var scaled = logits.to(ScalarType.Float32) / options.Temperature;
        long v = scaled.shape[0];
        if (options.TopK > 0 && options.TopK < v)
        {
            var kth = scaled.topk(options.TopK).values[-1];
            scaled = scaled.masked_fill(scaled.lt(kth), double.NegativeInfinity);
        }

        if (options.TopP < 1.0)
        {
            var (sorted, indices) = scaled.sort(descending: true);
            var probs = sorted.softmax(-1);
            var before = probs.cumsum(-1) - probs;                   // mass of the more likely tokens
            var drop = before.ge(options.TopP);                      // the most likely token is never dropped
            var dropUnsorted = zeros_like(drop).scatter(0, indices, drop);
            scaled = scaled.masked_fill(dropUnsorted, double.NegativeInfinity);
        }

        var p = scaled.softmax(-1).cpu();
        return (int)multinomial(p, 1, generator: generator).item<long>();
    }
}
