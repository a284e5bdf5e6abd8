namespace DpoSharp.Training;

/// <summary>The algorithm of a <c>dposharp train</c> run (option <c>algorithm</c>).</summary>
public enum TrainingAlgorithm
{
    /// <summary>DPO and its pairwise family (<see cref="DpoTrainer"/>; TRL's DPOTrainer, CPOTrainer, ORPOTrainer).</summary>
    Dpo,

    /// <summary>KTO on unpaired data (<see cref="KtoTrainer"/>; TRL's KTOTrainer).</summary>
    Kto,
}
