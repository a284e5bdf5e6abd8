using DpoSharp.Models;
using DpoSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Losses;

/// <summary>Per-token statistics a forward can return besides the log-probs (detached, per row).</summary>
[Flags]
public enum CompletionStatistics
{
    /// <summary>Log-probs only.</summary>
    None = 0,

    /// <summary>Greedy hits: completion tokens that are the argmax of their logits (SFT's <c>mean_token_accuracy</c>).</summary>
    TokenHits = 1,

    /// <summary>WPO's per-token log p(token) − log Σ_v p(v)², summed per row (<see cref="WpoWeights"/>).</summary>
    WpoTerms = 2,
}

/// <summary>What <see cref="HiddenStateLogProbs.Compute"/> returns.</summary>
/// <param name="LogProbs">Sums (with gradients), token counts and mean logits, as <see cref="SequenceLogProbs"/>.</param>
/// <param name="TokenHits">(B) fp32, detached: greedy hits per row, when requested.</param>
/// <param name="WpoTermSums">(B) fp32, detached: per-row sums of WPO's token terms, when requested.</param>
public sealed record HiddenStateLogProbsResult(SequenceLogProbsResult LogProbs, Tensor? TokenHits, Tensor? WpoTermSums);

/// <summary>
/// Completion log-probs straight from the final hidden states, so the (B, T, V) logits never exist in full: the
/// hidden states of the positions that predict a token (t-1 for token t) are gathered — only those predicting
/// completion tokens when <c>completionOnly</c> — then, chunk by chunk of positions, the <c>lm_head</c> gives
/// (c, V) logits, reduced at once to log p(token) = logit[token] − logsumexp(logits). A custom autograd function keeps
/// only the gathered hidden states and the logsumexps; its backward recomputes each chunk's logits and feeds
/// d/dlogits = g·(onehot(token) − softmax) back through the <c>lm_head</c>, whose parameters accumulate their
/// gradients. Same values and gradients as <see cref="SequenceLogProbs.Compute"/> on the full logits (fp32 rounding
/// aside); peak memory per chunk is a few (c, V) fp32 buffers. A head that draws random numbers (dropout in a LoRA
/// head) draws the same ones in the recomputation (the generator state is replayed, chunks run in the same order).
/// A plain linear head (<see cref="LinearHead"/>) takes a faster road to the same numbers: each chunk's logits are
/// computed vocabulary-first, (V, c), into one buffer reused by every chunk and reduced in place, and in the backward
/// the head's gradients are accumulated straight into its parameters' <c>.grad</c> (no per-chunk (V, D) temporaries,
/// no autograd graph).
/// </summary>
public static class HiddenStateLogProbs
{
    /// <summary>A plain linear <c>lm_head</c>: logits = x·<paramref name="Weight"/>ᵀ + <paramref name="Bias"/>, fp32,
    /// no adapter (<see cref="CausalLMBase.HasPlainLmHead"/>). Its logits are computed vocabulary-first, (V, c) =
    /// W·xᵀ: on CPU that product orientation runs ≈ 1.4× faster than (c, V) = x·Wᵀ at GPT-2's shape (BENCHMARKS.md).</summary>
    /// <param name="Weight">(V, D) fp32.</param>
    /// <param name="Bias">(V) fp32, or null.</param>
    public sealed record LinearHead(Tensor Weight, Tensor? Bias)
    {
        /// <summary>The head as a function, (c, D) → (c, V) logits.</summary>
        public Tensor Apply(Tensor rows) => nn.functional.linear(rows, Weight, Bias);

        /// <summary>An uninitialised fp32 buffer for the (V, c) logits of up to <paramref name="rows"/> rows.</summary>
        internal Tensor Buffer(long rows) => empty(Weight.shape[0] * rows, ScalarType.Float32, Weight.device);

        /// <summary>Writes head(<paramref name="rows"/>)ᵀ, (V, c) for (c, D) rows, into <paramref name="buffer"/>
        /// (<see cref="Buffer"/>) and returns that contiguous view.</summary>
        internal Tensor LogitsInto(Tensor buffer, Tensor rows)
        {
            long v = Weight.shape[0], c = rows.shape[0];
            var z = buffer.narrow(0, 0, v * c).view(v, c).addmm_(Weight, rows.t(), beta: 0, alpha: 1); // (V, c); beta 0 ignores the old contents
            return Bias is null ? z : z.add_(Bias.unsqueeze(1));
        }
    }

    /// <summary>Positions per chunk by default (<see cref="CausalLMBase.DefaultLogitsChunkSize"/>).</summary>
    public const int DefaultChunkSize = CausalLMBase.DefaultLogitsChunkSize;

    /// <summary>Computes per-row completion log-prob sums from hidden states.</summary>
    /// <param name="hidden">(B, T, D) final hidden states (after the final norm).</param>
    /// <param name="head">The <c>lm_head</c>: (c, D) → (c, V) logits in any float dtype (cast to fp32 here).</param>
    /// <param name="headParameters">The trainable tensors <paramref name="head"/> uses (to know whether gradients are needed).</param>
    /// <param name="inputIds">(B, T) int64 token ids.</param>
    /// <param name="completionMask">(B, T): 1 where the token at that position is a completion token.</param>
    /// <param name="chunkSize">Positions per chunk.</param>
    /// <param name="completionOnly">Compute logits only at positions that predict a completion token; otherwise at
    /// every position but the last (masked positions then count zero).</param>
    /// <param name="statistics">Extra detached per-row statistics to compute in the same pass.</param>
    /// <param name="sequenceIds">(B, T) int64: the output sequence of each completion token (rows holding several
    /// sequences, <see cref="Data.SequenceBatch.SegmentIds"/>), or null: one output per row.</param>
    /// <param name="sequenceCount">Output sequences with <paramref name="sequenceIds"/>.</param>
    /// <param name="tokenWeights">(B, T) fp32 or null: the weight of the token at each position in the sums, as in
    /// <see cref="SequenceLogProbs.Compute"/>; null: all 1.</param>
    /// <param name="linearHead"><paramref name="head"/> as a plain linear map, or null: then the faster road (same
    /// values and gradients) is taken; <paramref name="head"/> and <paramref name="headParameters"/> must describe the
    /// same head.</param>
    public static HiddenStateLogProbsResult Compute(Tensor hidden, Func<Tensor, Tensor> head, IEnumerable<Tensor> headParameters, Tensor inputIds, Tensor completionMask,
        int chunkSize = DefaultChunkSize, bool completionOnly = true, CompletionStatistics statistics = CompletionStatistics.None, Tensor? sequenceIds = null, int sequenceCount = 0,
        Tensor? tokenWeights = null, LinearHead? linearHead = null)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(headParameters);
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(completionMask);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        if (hidden.dim() != 3 || inputIds.dim() != 2 || completionMask.dim() != 2)
        {
            throw new ArgumentException($"expected hidden (B, T, D), input_ids and completion_mask (B, T); got {string.Join('x', hidden.shape)}, {string.Join('x', inputIds.shape)}, {string.Join('x', completionMask.shape)}");
        }

        long b = hidden.shape[0], t = hidden.shape[1], d = hidden.shape[2];
        if (inputIds.shape[0] != b || inputIds.shape[1] != t || completionMask.shape[0] != b || completionMask.shape[1] != t)
        {
            throw new ArgumentException($"shape mismatch: hidden {string.Join('x', hidden.shape)}, input_ids {string.Join('x', inputIds.shape)}, completion_mask {string.Join('x', completionMask.shape)}");
        }

        LengthDesensitization.CheckShape(tokenWeights, completionMask);
        var device = hidden.device;
        long outputs = sequenceIds is null ? b : sequenceCount;
        var (rows, flat, labels, weights) = PredictingPositions(inputIds, completionMask, completionOnly, sequenceIds);
        var selected = hidden.reshape(b * t, d).index_select(0, flat);                      // (N, D)
        Tensor Scatter(Tensor perToken) =>                                                  // (N) → (S)
            zeros(outputs, ScalarType.Float32, device).index_add(0, rows, perToken * weights, 1.0);
        var counts = sequenceIds is null
            ? completionMask[.., 1..].to(ScalarType.Float32).sum(1)                         // (B)
            : zeros(outputs, ScalarType.Float32, device).index_add(0, rows, weights, 1.0);  // (S)

        if (selected.shape[0] == 0)
        {
            // No completion token at all: zero sums that still reach the graph (backward must not fail).
            var zero = zeros(outputs, ScalarType.Float32, device) + (selected.sum().to(ScalarType.Float32) * 0);
            var none = zeros(outputs, ScalarType.Float32, device);
            return new HiddenStateLogProbsResult(new SequenceLogProbsResult(zero, counts, none),
                statistics.HasFlag(CompletionStatistics.TokenHits) ? none : null,
                statistics.HasFlag(CompletionStatistics.WpoTerms) ? none : null);
        }

        var side = new SideOutputs(statistics);
        Tensor tokenLogps;                                                                  // (N)
        bool paramsNeedGrad = headParameters.Any(p => p.requires_grad);
        if (!is_grad_enabled() || !(selected.requires_grad || paramsNeedGrad))
        {
            tokenLogps = ForwardChunks(selected, head, linearHead, labels, chunkSize, side).LogProbs;
        }
        else
        {
            using var anchor = selected.requires_grad ? null : ActivationCheckpoint.GradientAnchor();
            tokenLogps = ChunkedHeadFunction.apply(new HeadCall(head, linearHead, chunkSize, side), selected, labels, anchor!);
        }

        var sums = tokenWeights is null
            ? Scatter(tokenLogps)                                                           // (B) or (S)
            : Scatter(tokenLogps * tokenWeights.reshape(-1).index_select(0, flat + 1).to(ScalarType.Float32)); // (B) or (S): the weight of token p+1
        using (no_grad())
        {
            var meanLogits = Scatter(cat(side.MeanLogits, 0)) / counts.clamp_min(1);        // (B)
            var hits = side.Hits.Count > 0 ? Scatter(cat(side.Hits, 0).to(ScalarType.Float32)) : null;
            var wpo = side.Wpo.Count > 0 ? Scatter(cat(side.Wpo, 0)) : null;
            return new HiddenStateLogProbsResult(new SequenceLogProbsResult(sums, counts, meanLogits.detach()), hits?.detach(), wpo?.detach());
        }
    }

    /// <summary>
    /// The positions whose logits are needed: position p of row r predicts token p+1, so for completion token p+1
    /// (or, without <paramref name="completionOnly"/>, every token but the first) the hidden state at (r, p).
    /// Returns (N) output indices (the row, or with <paramref name="sequenceIds"/> the predicted token's sequence; 0
    /// where the weight is 0), (N) flat indices r·T + p into the (B·T) hidden rows, (N) labels and (N) fp32 weights
    /// (the completion mask of the predicted token: all ones with <paramref name="completionOnly"/>).
    /// </summary>
    internal static (Tensor Rows, Tensor Flat, Tensor Labels, Tensor Weights) PredictingPositions(Tensor inputIds, Tensor completionMask, bool completionOnly, Tensor? sequenceIds = null)
    {
        long t = inputIds.shape[1];
        var target = completionMask[.., 1..].to(ScalarType.Bool);                             // (B, T-1)
        var chosen = completionOnly ? target : ones_like(target, ScalarType.Bool);          // (B, T-1)
        var idx = chosen.nonzero();                                                         // (N, 2): (row, position)
        var rows = idx[.., 0];                                                              // (N)
        var pos = idx[.., 1];                                                               // (N)
        var flat = (rows * t) + pos;                                                        // (N)
        var labels = inputIds.reshape(-1).index_select(0, flat + 1);                        // (N)
        var hit = target.reshape(-1).index_select(0, (rows * (t - 1)) + pos);               // (N) bool
        var weights = hit.to(ScalarType.Float32);                                           // (N)
        if (sequenceIds is not null)
        {
            var seq = sequenceIds.reshape(-1).index_select(0, flat + 1);                    // (N)
            rows = where(hit, seq, zeros_like(seq));                                        // (N)
        }

        return (rows, flat, labels, weights);
    }

    /// <summary>
    /// Log-probs (N) and logsumexps (N) of <paramref name="labels"/> under head(<paramref name="selected"/>), chunk by
    /// chunk, without gradients; fills <paramref name="side"/>. Each chunk's logits are reduced in place (the
    /// logsumexp as libtorch computes it: max, Σ exp(z − max), log, + max). With a <paramref name="linear"/> head the
    /// logits are (V, c), written into one buffer for all chunks; otherwise (c, V) from <paramref name="head"/>.
    /// </summary>
    private static (Tensor LogProbs, Tensor Lse) ForwardChunks(Tensor selected, Func<Tensor, Tensor> head, LinearHead? linear, Tensor labels, int chunkSize, SideOutputs side)
    {
        using var noGrad = no_grad();
        long n = selected.shape[0];
        int vd = linear is null ? 1 : 0;                                                    // the vocabulary dimension of a chunk's logits
        var logps = new List<Tensor>();
        var lses = new List<Tensor>();
        using var buffer = linear?.Buffer(Math.Min(chunkSize, n));
        for (long start = 0; start < n; start += chunkSize)
        {
            long len = Math.Min(chunkSize, n - start);
            using var scope = NewDisposeScope();
            var rows = selected.narrow(0, start, len);                                      // (c, D)
            var z = linear is null ? head(rows).to(ScalarType.Float32) : linear.LogitsInto(buffer!, rows); // (c, V) or (V, c)
            var label = labels.narrow(0, start, len).unsqueeze(vd);                         // (c, 1) or (1, c)
            var picked = z.gather(vd, label).squeeze(vd);                                   // (c)
            side.MeanLogits.Add(z.mean([vd]).MoveToOuterDisposeScope());                    // (c)
            if (side.Statistics.HasFlag(CompletionStatistics.TokenHits))
            {
                side.Hits.Add(z.argmax(vd).eq(label.squeeze(vd)).MoveToOuterDisposeScope()); // (c)
            }

            Tensor? lse2 = side.Statistics.HasFlag(CompletionStatistics.WpoTerms) ? (z * 2).logsumexp(vd) : null; // (c)
            var lse = LogSumExpInPlace(z, vd);                                              // (c); z is now exp(z − max)
            logps.Add((picked - lse).MoveToOuterDisposeScope());
            lses.Add(lse.MoveToOuterDisposeScope());
            if (lse2 is not null)
            {
                // log p(y) − log Σ p² = (picked − lse) − (lse2 − 2·lse)
                side.Wpo.Add((picked + lse - lse2).MoveToOuterDisposeScope());
            }
        }

        return (cat(logps, 0), cat(lses, 0));
    }

    /// <summary>logsumexp of <paramref name="z"/> over dimension <paramref name="dim"/> with libtorch's operations (as
    /// <c>z.logsumexp(dim)</c>), overwriting <paramref name="z"/> with exp(z − max) instead of allocating a temporary.</summary>
    private static Tensor LogSumExpInPlace(Tensor z, int dim)
    {
        var max = z.amax([dim], keepdim: true);                                             // (c, 1) or (1, c)
        max.masked_fill_(max.abs().eq(double.PositiveInfinity), 0);                          // as libtorch: an all-±inf row is not turned into nan here
        var sum = z.sub_(max).exp_().sum(dim: dim);                                         // (c)
        return sum.log_().add_(max.squeeze(dim));                                           // (c)
    }

    /// <summary>Per-chunk detached outputs collected by the forward.</summary>
    private sealed class SideOutputs(CompletionStatistics statistics)
    {
        public CompletionStatistics Statistics { get; } = statistics;

        public List<Tensor> MeanLogits { get; } = [];

        public List<Tensor> Hits { get; } = [];

        public List<Tensor> Wpo { get; } = [];
    }

    /// <summary>What the autograd function needs besides tensors: the head as a function, and as a
    /// <see cref="LinearHead"/> when it is one (then that road is taken).</summary>
    private sealed record HeadCall(Func<Tensor, Tensor> Head, LinearHead? Linear, int ChunkSize, SideOutputs Side)
    {
        /// <summary>Seed of the device generators (non-CPU devices), drawn in the forward.</summary>
        public long? DeviceSeed { get; set; }
    }

    /// <summary>
    /// log p(labels) (N) from hidden rows (N, D). Arguments: <see cref="HeadCall"/>, hidden rows, labels (N), anchor
    /// (a 0-element tensor requiring grad when only the head's parameters need gradients, else null). The backward
    /// recomputes each chunk's logits and turns them in place into d/dz = g·(onehot(label) − softmax). A
    /// <see cref="LinearHead"/>'s chunks reuse one (V, c) buffer; the rows get dzᵀ·W while dz·x (and Σ dz) are
    /// accumulated straight into the weight's (and bias's) <c>.grad</c> with <c>addmm_</c>, as autograd would have
    /// accumulated them. Any other head is run again under autograd and dz fed back through it; a head that draws
    /// random numbers draws the forward's again (the generator state is replayed, chunks in the forward's order).
    /// </summary>
    private sealed class ChunkedHeadFunction : autograd.SingleTensorFunction<ChunkedHeadFunction>
    {
        private const string CallKey = "call";

        public override string Name => nameof(ChunkedHeadFunction);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var call = (HeadCall)vars[0];
            var selected = (Tensor)vars[1];
            var labels = (Tensor)vars[2];
            Tensor? rngState = null;
            if (call.Linear is null)
            {
                (rngState, call.DeviceSeed) = RngReplay.Capture(selected.device);   // a head with dropout (LoRA) draws the same masks again
            }

            var (logps, lse) = ForwardChunks(selected, call.Head, call.Linear, labels, call.ChunkSize, call.Side);
            ctx.save_data(CallKey, call);
            ctx.save_for_backward(rngState is null ? [selected, labels, lse] : [selected, labels, lse, rngState]);
            return logps;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            DeferredDisposal.Flush();
            var call = (HeadCall)ctx.get_data(CallKey);
            Tensor? gradSelected = null;
            using (var scope = NewDisposeScope())
            {
                var saved = ctx.get_saved_variables();
                Tensor selected = saved[0], labels = saved[1], lse = saved[2];
                long n = selected.shape[0];
                var parts = new List<Tensor>();
                using var replay = call.Linear is null ? RngReplay.Replay(saved[3], call.DeviceSeed) : null;
                using var linear = call.Linear is { } head ? new LinearBackward(head, Math.Min(call.ChunkSize, n)) : null;
                for (long start = 0; start < n; start += call.ChunkSize)
                {
                    long len = Math.Min(call.ChunkSize, n - start);
                    using var inner = NewDisposeScope();
                    var chunk = new GradChunk(
                        selected.narrow(0, start, len),                                           // (c, D)
                        labels.narrow(0, start, len),                                             // (c)
                        lse.narrow(0, start, len),                                                // (c)
                        gradOutput.narrow(0, start, len).to(ScalarType.Float32),                  // (c)
                        selected.requires_grad);
                    var rowsGrad = linear is null ? HeadBackward(call.Head, chunk) : linear.Chunk(chunk);  // (c, D) or null
                    if (rowsGrad is not null)
                    {
                        parts.Add(rowsGrad.MoveToOuterDisposeScope());
                    }
                }

                if (selected.requires_grad)
                {
                    gradSelected = cat(parts, 0).MoveToOuterDisposeScope();                      // (N, D)
                }
            }

            DeferredDisposal.Add(gradOutput);
            DeferredDisposal.Add(gradSelected);
            return [null!, gradSelected!, null!, null!];
        }

        /// <summary>A generic head's chunk: its logits again under autograd, dz fed back through the head (whose
        /// parameters accumulate their gradients); returns the rows' gradient (c, D), or null when not needed.</summary>
        private static Tensor? HeadBackward(Func<Tensor, Tensor> head, GradChunk c)
        {
            Tensor rowsIn, logits;
            using (enable_grad())
            {
                rowsIn = c.Rows.detach().requires_grad_(c.RowsNeedGrad);                          // (c, D)
                logits = head(rowsIn);                                                            // (c, V), graph through the head
            }

            Tensor dz;
            using (no_grad())
            {
                // For fp32 logits this overwrites the head's output (nothing in a linear head's backward reads it;
                // autograd's version check would report it otherwise).
                dz = LogProbGradientInPlace(logits.detach().to(ScalarType.Float32), c, vocabDim: 1).to(logits.dtype); // (c, V)
            }

            autograd.backward([logits], [dz]);
            return c.RowsNeedGrad ? rowsIn.grad : null;
        }
    }

    /// <summary>One chunk of <see cref="ChunkedHeadFunction"/>'s backward: hidden rows (c, D), labels (c), the
    /// forward's logsumexps (c), the incoming gradient (c) fp32, and whether the rows need a gradient.</summary>
    private sealed record GradChunk(Tensor Rows, Tensor Labels, Tensor Lse, Tensor Grad, bool RowsNeedGrad);

    /// <summary>Turns a chunk's logits <paramref name="z"/> ((c, V) or (V, c): <paramref name="vocabDim"/>) in place into
    /// d(g·log p(label))/dz = g·(onehot(label) − softmax(z)), softmax from the forward's logsumexp; returns it.</summary>
    private static Tensor LogProbGradientInPlace(Tensor z, GradChunk c, int vocabDim)
    {
        var g = c.Grad.unsqueeze(vocabDim);                                                       // (c, 1) or (1, c)
        z.sub_(c.Lse.unsqueeze(vocabDim)).exp_();                                                 // softmax
        z.mul_(g.neg());                                                                          // −g·softmax
        return z.scatter_add_(vocabDim, c.Labels.unsqueeze(vocabDim), g);                         // + g at the label
    }

    /// <summary>The backward of a <see cref="LinearHead"/>: one (V, c) buffer for every chunk, the weight's and bias's
    /// <c>.grad</c> (created as zeros when missing) accumulated in place.</summary>
    private sealed class LinearBackward : IDisposable
    {
        private readonly LinearHead _head;
        private readonly Tensor _buffer;
        private readonly Tensor? _gradW;
        private readonly Tensor? _gradB;

        public LinearBackward(LinearHead head, long rows)
        {
            _head = head;
            _buffer = head.Buffer(rows);
            _gradW = head.Weight.requires_grad ? GradOf(head.Weight) : null;                     // (V, D)
            _gradB = head.Bias is { requires_grad: true } ? GradOf(head.Bias) : null;             // (V)
        }

        /// <summary>Accumulates the chunk's head gradients; returns the rows' gradient dzᵀ·W (c, D), or null.</summary>
        public Tensor? Chunk(GradChunk c)
        {
            using var noGrad = no_grad();
            var dz = LogProbGradientInPlace(_head.LogitsInto(_buffer, c.Rows), c, vocabDim: 0);  // (V, c)
            _gradW?.addmm_(dz, c.Rows, beta: 1, alpha: 1);                                        // (V, D) += dz·x
            _gradB?.add_(dz.sum(dim: 1));                                                         // (V) += Σ dz
            return c.RowsNeedGrad ? dz.t().mm(_head.Weight) : null;                               // (c, D)
        }

        public void Dispose() => _buffer.Dispose();

        /// <summary>The <c>.grad</c> of <paramref name="parameter"/>, created (zeros) when it has none yet.</summary>
        private static Tensor GradOf(Tensor parameter)
        {
            var grad = parameter.grad;
            if (grad is null)
            {
                parameter.grad = zeros_like(parameter);
                grad = parameter.grad!;
            }

            return grad;
        }
    }
}
