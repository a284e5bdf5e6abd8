namespace DpoSharp.Training.Engine;

/// <summary>When a run evaluates (transformers' <c>eval_strategy</c>; config text <c>no</c>, <c>steps</c>, <c>epoch</c>).</summary>
public enum EvalStrategy
{
    /// <summary>Never (<c>no</c>).</summary>
    No,

    /// <summary>Every <see cref="LoggingOptions.EvalSteps"/> optimizer steps (<c>steps</c>).</summary>
    Steps,

    /// <summary>At the end of every epoch (<c>epoch</c>).</summary>
    Epoch,
}
