using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace DpoSharp.Tests.TestSupport;

/// <summary>
/// The test classes that run llama.cpp: run alone, not beside other tests, so that llama.cpp's threads and its
/// allocations (returned to the system at once under <c>NativeAllocator</c>'s settings) do not disturb tests that
/// measure the process (RSS), and other tests' thread settings do not change the reference forward passes.
/// </summary>
[CollectionDefinition(LlamaCpp.Collection, DisableParallelization = true)]
public sealed class LlamaCppCollection
{
}

/// <summary>
/// llama.cpp itself (LLamaSharp 0.30.0 and its CPU backend from NuGet) running a GGUF file: next-token log-probs at
/// every position of a sequence, and greedy continuations. llama.cpp's log lines are kept for failure messages.
/// </summary>
internal static class LlamaCpp
{
    /// <summary>The test collection of the classes that use llama.cpp.</summary>
    public const string Collection = "llama.cpp";

    private static readonly object Gate = new();
    private static readonly StringBuilder Log = new();
    private static bool _configured;

    /// <summary>llama.cpp's log since the last call (cleared).</summary>
    public static string TakeLog()
    {
        lock (Log)
        {
            var s = Log.ToString();
            Log.Clear();
            return s;
        }
    }

    /// <summary>log softmax of llama.cpp's logits after each token of <paramref name="ids"/>: (T, V) in doubles.</summary>
    public static double[][] LogProbs(string gguf, IReadOnlyList<int> ids)
    {
        using var weights = Load(gguf, out var parameters);
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Count; i++)
        {
            batch.Add(ids[i], i, LLamaSeqId.Zero, true);
        }

        Check(context.NativeHandle.Decode(batch));
        return [.. Enumerable.Range(0, ids.Count).Select(i => LogSoftmax(context.NativeHandle.GetLogitsIth(i)))];
    }

    /// <summary>The <paramref name="count"/> tokens llama.cpp picks greedily after <paramref name="prompt"/>.</summary>
    public static int[] Greedy(string gguf, IReadOnlyList<int> prompt, int count)
    {
        using var weights = Load(gguf, out var parameters);
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Count; i++)
        {
            batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Count - 1);
        }

        Check(context.NativeHandle.Decode(batch));
        var result = new List<int>();
        int last = prompt.Count - 1;
        for (int step = 0; step < count; step++)
        {
            var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
            int next = ArgMax(logits);
            result.Add(next);
            batch.Clear();
            batch.Add(next, ++last, LLamaSeqId.Zero, true);
            Check(context.NativeHandle.Decode(batch));
        }

        return [.. result];
    }

    /// <summary>The model's vocabulary as llama.cpp loaded it: token count, BOS, EOS.</summary>
    public static (int Count, int Bos, int Eos) Vocabulary(string gguf)
    {
        using var weights = Load(gguf, out _);
        var vocab = weights.NativeHandle.Vocab;
        return (vocab.Count, (int?)vocab.BOS ?? -1, (int?)vocab.EOS ?? -1);
    }

    /// <summary>llama.cpp's tokenization of <paramref name="text"/> (no BOS, special tokens not parsed).</summary>
    public static int[] Tokenize(string gguf, string text) => Tokenize(gguf, [text])[0];

    /// <summary>llama.cpp's tokenization of each of <paramref name="texts"/> (the model loaded once).</summary>
    public static int[][] Tokenize(string gguf, IReadOnlyList<string> texts)
    {
        using var weights = Load(gguf, out _);
        return [.. texts.Select(text => weights.Tokenize(text, false, false, Encoding.UTF8).Select(t => (int)t).ToArray())];
    }

    private static LLamaWeights Load(string gguf, out ModelParams parameters)
    {
        lock (Gate)
        {
            if (!_configured)
            {
                NativeLibraryConfig.All.WithLogCallback((level, message) =>
                {
                    lock (Log)
                    {
                        Log.Append(message);
                    }
                });
                _configured = true;
            }
        }

        parameters = new ModelParams(gguf)
        {
            ContextSize = 64,
            BatchSize = 64,
            UBatchSize = 64,
            GpuLayerCount = 0,
            Threads = 2,
            BatchThreads = 2,
            SeqMax = 1,
            // An fp32 KV cache and no flash attention: llama.cpp's defaults (f16 cache) round keys and values to 11 bits.
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false
        };
        try
        {
            return LLamaWeights.LoadFromFile(parameters);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"llama.cpp could not load {gguf}: {e.Message}\n{TakeLog()}", e);
        }
    }

    private static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok)
        {
            throw new InvalidOperationException($"llama_decode returned {r}\n{TakeLog()}");
        }
    }

    private static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var l in logits)
        {
            max = Math.Max(max, l);
        }

        double sum = 0;
        foreach (var l in logits)
        {
            sum += Math.Exp(l - max);
        }

        double lse = max + Math.Log(sum);
        var result = new double[logits.Length];
        for (int i = 0; i < logits.Length; i++)
        {
            result[i] = logits[i] - lse;
        }

        return result;
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
