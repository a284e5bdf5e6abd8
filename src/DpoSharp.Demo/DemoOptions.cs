using System.Globalization;

namespace DpoSharp.Demo;

/// <summary>
/// Settings of the built-in demo (<see cref="DemoRunner"/>). The defaults are the measured full run (under 5 minutes
/// on a 2-core CPU); <see cref="Quick"/> gives a shortened run for tests. <see cref="Validate"/> checks them all.
/// </summary>
public sealed class DemoOptions
{
    /// <summary>Where everything goes. <value>Default <c>dposharp-demo</c>.</value></summary>
    public string OutputDir { get; set; } = "dposharp-demo";

    /// <summary>Seed of data, initial weights and training. <value>Default 42.</value></summary>
    public int Seed { get; set; } = 42;

    /// <summary>Data: numbers 0..MaxNumber, train / held-out question counts (see <see cref="TruthfulnessDatasetOptions"/>).
    /// <value>Default 39 / 2500 / 200.</value></summary>
    public int MaxNumber { get; set; } = 39;

    /// <inheritdoc cref="MaxNumber"/>
    public int TrainQuestions { get; set; } = 2500;

    /// <inheritdoc cref="MaxNumber"/>
    public int EvalQuestions { get; set; } = 200;

    /// <summary>Model (Llama architecture): hidden size, layers, heads, MLP size. <value>Default 64 / 2 / 4 / 172.</value></summary>
    public int HiddenSize { get; set; } = 64;

    /// <inheritdoc cref="HiddenSize"/>
    public int Layers { get; set; } = 2;

    /// <inheritdoc cref="HiddenSize"/>
    public int Heads { get; set; } = 4;

    /// <inheritdoc cref="HiddenSize"/>
    public int IntermediateSize { get; set; } = 172;

    /// <summary>SFT epochs over the 50/50 corpus (2 rows per training question). <value>Default 20.</value></summary>
    public double SftEpochs { get; set; } = 20;

    /// <summary>SFT batch size and peak learning rate (linear decay after 20 warmup steps). <value>Default 64, 3e-3.</value></summary>
    public int SftBatchSize { get; set; } = 64;

    /// <inheritdoc cref="SftBatchSize"/>
    public double SftLearningRate { get; set; } = 3e-3;

    /// <summary>DPO optimizer steps, batch size (pairs) and learning rate (constant after 10 warmup steps).
    /// <value>Default 600, 64, 1e-3.</value></summary>
    public int DpoSteps { get; set; } = 600;

    /// <inheritdoc cref="DpoSteps"/>
    public int DpoBatchSize { get; set; } = 64;

    /// <inheritdoc cref="DpoSteps"/>
    public double DpoLearningRate { get; set; } = 1e-3;

    /// <summary>DPO β. <value>Default 0.5.</value></summary>
    public double Beta { get; set; } = 0.5;

    /// <summary>RPO α: weight of the NLL of the chosen answer added to the sigmoid DPO loss (TRL's <c>rpo_alpha</c>);
    /// 0 = plain DPO. <value>Default 1.0.</value></summary>
    public double RpoAlpha { get; set; } = 1.0;

    /// <summary>β values for the truthfulness-vs-KL frontier (one extra DPO run each); empty: no sweep. <value>Default empty.</value></summary>
    public IReadOnlyList<double> SweepBetas { get; set; } = [];

    /// <summary>Device: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>. <value>Default <c>cpu</c>.</value></summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Intra-op CPU threads during the demo (restored afterwards); 0 leaves TorchSharp's setting. The demo's
    /// matrices are 64 wide: one thread gives the same numbers and avoids OpenMP synchronisation, which costs most
    /// when other processes share the cores (measured: 12 s instead of 20 s for <see cref="Quick"/> on a busy
    /// 2-core machine). <value>Default 1.</value></summary>
    public int Threads { get; set; } = 1;

    /// <summary>A shortened run (tiny data and step counts) for tests: well under a minute on 2 cores.</summary>
    public static DemoOptions Quick(string outputDir) => new()
    {
        OutputDir = outputDir,
        TrainQuestions = 2000,
        EvalQuestions = 100,
        SftEpochs = 8,
        DpoSteps = 250,
    };

    /// <summary>Throws <see cref="DpoSharpException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        new TruthfulnessDatasetOptions { Seed = Seed, MaxNumber = MaxNumber, TrainQuestions = TrainQuestions, EvalQuestions = EvalQuestions }.Validate();
        if (string.IsNullOrWhiteSpace(OutputDir))
        {
            throw new DpoSharpException("output_dir is empty: give the directory the demo writes into.");
        }

        void Positive(string name, double v)
        {
            if (!(v > 0) || double.IsInfinity(v))
            {
                throw new DpoSharpException($"{name} must be positive (got {v.ToString(CultureInfo.InvariantCulture)}).");
            }
        }

        Positive("hidden_size", HiddenSize);
        Positive("layers", Layers);
        Positive("heads", Heads);
        Positive("intermediate_size", IntermediateSize);
        Positive("sft_epochs", SftEpochs);
        Positive("sft_batch_size", SftBatchSize);
        Positive("sft_learning_rate", SftLearningRate);
        Positive("dpo_steps", DpoSteps);
        Positive("dpo_batch_size", DpoBatchSize);
        Positive("dpo_learning_rate", DpoLearningRate);
        Positive("beta", Beta);
        if (HiddenSize % Heads != 0 || (HiddenSize / Heads) % 2 != 0)
        {
            throw new DpoSharpException($"hidden_size {HiddenSize} must be a multiple of heads {Heads} with an even head size.");
        }

        if (Threads < 0)
        {
            throw new DpoSharpException($"threads must be 0 (leave as is) or positive (got {Threads}).");
        }

        if (RpoAlpha < 0 || double.IsNaN(RpoAlpha))
        {
            throw new DpoSharpException($"rpo_alpha must be 0 or more (got {RpoAlpha.ToString(CultureInfo.InvariantCulture)}).");
        }

        foreach (var b in SweepBetas)
        {
            Positive("sweep β", b);
        }
    }
}
