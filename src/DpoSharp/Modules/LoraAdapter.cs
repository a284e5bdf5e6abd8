using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace DpoSharp.Modules;

/// <summary>
/// The low-rank update of one linear layer, with PEFT's semantics: <c>y = base(x) + B(A(dropout(x))) · alpha / r</c>,
/// <c>lora_A</c> (r, in) and <c>lora_B</c> (out, r) whatever the base layout. Attached to an
/// <see cref="ILoraTarget"/> (a <see cref="Linear"/> or <see cref="Conv1D"/>) as its child <c>lora</c>, so the base
/// parameter names are unchanged; the host adds the adapter's output (<see cref="forward"/>) to its own only while
/// <see cref="Enabled"/>, and runs exactly its plain ops otherwise. Dropout acts on the adapter's input path only and
/// only in training mode.
/// </summary>
public sealed class LoraAdapter : nn.Module<Tensor, Tensor>
{
    /// <summary>The name the host registers the adapter under (parameters <c>&lt;layer&gt;.lora.lora_A</c>, <c>.lora_B</c>).</summary>
    public const string ModuleName = "lora";

    [ComponentName(Name = "lora_A")]
    private readonly Parameter _a;

    [ComponentName(Name = "lora_B")]
    private readonly Parameter _b;

    /// <summary>
    /// Creates an adapter for a layer with <paramref name="inFeatures"/> inputs and <paramref name="outFeatures"/>
    /// outputs: A is initialised as PEFT does (Kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in)) from
    /// <paramref name="generator"/> (null: torch's global generator), B is zero, so the adapter starts as the identity.
    /// </summary>
    /// <param name="inFeatures">Input features of the base layer.</param>
    /// <param name="outFeatures">Output features of the base layer.</param>
    /// <param name="rank">The rank r (at least 1).</param>
    /// <param name="alpha">lora_alpha; the update is scaled by alpha / r.</param>
    /// <param name="dropout">Dropout probability on the adapter's input, in [0, 1).</param>
    /// <param name="device">Device of the parameters.</param>
    /// <param name="dtype">Dtype of the parameters.</param>
    /// <param name="generator">Generator of A's initial values (CPU), or null.</param>
    public LoraAdapter(long inFeatures, long outFeatures, int rank, double alpha, double dropout, Device device, ScalarType dtype, Generator? generator = null)
        : base(nameof(LoraAdapter))
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inFeatures, 1L);
        ArgumentOutOfRangeException.ThrowIfLessThan(outFeatures, 1L);
        if (!(dropout >= 0 && dropout < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "dropout must be in [0, 1)");
        }

        if (!double.IsFinite(alpha))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must be finite");
        }

        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Rank = rank;
        Alpha = alpha;
        DropoutProbability = dropout;
        Scaling = alpha / rank;
        using (no_grad())
        {
            double bound = 1.0 / Math.Sqrt(inFeatures);
            using var init = empty([rank, inFeatures], ScalarType.Float32, CPU).uniform_(-bound, bound, generator); // (r, in)
            _a = new Parameter(init.to(dtype, device), requires_grad: true);
            _b = new Parameter(zeros([outFeatures, rank], dtype, device), requires_grad: true);                   // (out, r)
        }

        RegisterComponents();
    }

    /// <summary>Input features of the base layer.</summary>
    public long InFeatures { get; }

    /// <summary>Output features of the base layer.</summary>
    public long OutFeatures { get; }

    /// <summary>The rank r.</summary>
    public int Rank { get; }

    /// <summary>lora_alpha.</summary>
    public double Alpha { get; }

    /// <summary>Dropout probability on the adapter's input (training mode only).</summary>
    public double DropoutProbability { get; }

    /// <summary>alpha / r.</summary>
    public double Scaling { get; }

    /// <summary>Whether the host adds the update to its output; false gives exactly the base layer's output.</summary>
    /// <value>Default true.</value>
    public bool Enabled { get; set; } = true;

    /// <summary><c>lora_A</c>: (r, in).</summary>
    public Parameter A => _a;

    /// <summary><c>lora_B</c>: (out, r).</summary>
    public Parameter B => _b;

    /// <summary>The update <c>B(A(dropout(x))) · alpha / r</c> of <paramref name="input"/> (…, in): (…, out), in the
    /// adapter's dtype.</summary>
    public override Tensor forward(Tensor input)
    {
        var x = input.dtype == _a.dtype ? input : input.to(_a.dtype);
        if (training && DropoutProbability > 0)
        {
            x = nn.functional.dropout(x, DropoutProbability, training: true);
        }

        var down = nn.functional.linear(x, _a);                    // (…, r)
        return nn.functional.linear(down, _b).mul_(Scaling);      // (…, out)
    }

    /// <summary>The dense update <c>alpha / r · B·A</c>: (out, in), fp32, without autograd history.</summary>
    public Tensor DeltaWeight()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var a = _a.detach().to(ScalarType.Float32);                   // (r, in)
        var b = _b.detach().to(ScalarType.Float32);                   // (out, r)
        return matmul(b, a).mul_(Scaling).MoveToOuterDisposeScope(); // (out, in)
    }

    /// <summary>
    /// What a host returns: <paramref name="baseOutput"/> (…, out) unchanged when <paramref name="adapter"/> is null or
    /// disabled, else <paramref name="baseOutput"/> plus the adapter's update of <paramref name="input"/> (added in place).
    /// </summary>
    public static Tensor Apply(Tensor baseOutput, Tensor input, LoraAdapter? adapter)
    {
        ArgumentNullException.ThrowIfNull(baseOutput);
        if (adapter is not { Enabled: true })
        {
            return baseOutput;
        }

        var delta = adapter.call(input);                                                   // (…, out)
        return baseOutput.add_(delta.dtype == baseOutput.dtype ? delta : delta.to(baseOutput.dtype));
    }

    /// <summary>True when <paramref name="parameterName"/> (a state-dict name) belongs to an adapter.</summary>
    public static bool IsAdapterParameter(string parameterName)
    {
        ArgumentNullException.ThrowIfNull(parameterName);
        return parameterName.EndsWith("." + ModuleName + ".lora_A", StringComparison.Ordinal)
            || parameterName.EndsWith("." + ModuleName + ".lora_B", StringComparison.Ordinal)
            || parameterName is ModuleName + ".lora_A" or ModuleName + ".lora_B";
    }

    /// <summary>
    /// The host side of <see cref="ILoraTarget.AttachLora"/>: checks <paramref name="next"/>'s shapes against
    /// <paramref name="target"/>, unregisters <paramref name="current"/> from <paramref name="host"/> and registers
    /// <paramref name="next"/> as <see cref="ModuleName"/>. Returns <paramref name="next"/> (the host's new field value).
    /// </summary>
    internal static LoraAdapter? Attach(nn.Module host, ILoraTarget target, LoraAdapter? current, LoraAdapter? next)
    {
        if (next is not null && (next.InFeatures != target.InFeatures || next.OutFeatures != target.OutFeatures))
        {
            throw new ArgumentException($"adapter for {next.InFeatures} → {next.OutFeatures} features does not fit a {target.InFeatures} → {target.OutFeatures} layer", nameof(next));
        }

        if (current is not null)
        {
            host.register_module(ModuleName, null!); // null unregisters
        }

        if (next is not null)
        {
            host.register_module(ModuleName, next);
        }

        return next;
    }
}
