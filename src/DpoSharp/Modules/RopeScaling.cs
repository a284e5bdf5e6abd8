namespace DpoSharp.Modules;

/// <summary><c>rope_scaling</c> of a config: <c>linear</c> or <c>llama3</c> (null in <c>ModelConfig.RopeScaling</c> when absent or <c>default</c>).</summary>
/// <param name="Type"><c>rope_type</c> (or legacy <c>type</c>): linear or llama3.</param>
/// <param name="Factor"><c>factor</c>.</param>
/// <param name="LowFreqFactor"><c>low_freq_factor</c> (llama3).</param>
/// <param name="HighFreqFactor"><c>high_freq_factor</c> (llama3).</param>
/// <param name="OriginalMaxPositionEmbeddings"><c>original_max_position_embeddings</c> (llama3).</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);
