using System.Text.Json.Nodes;

namespace DpoSharp.Models;

/// <summary>
/// The Hugging Face <c>config.json</c> of a causal LM. Typed properties cover what the architectures use; the
/// raw JSON is kept so that saving writes back every field the user's file had.
/// (Contract stub: the models stream fills in parsing, validation and per-architecture fields.)
/// </summary>
public sealed partial class ModelConfig
{
    /// <summary><c>model_type</c>: gpt2, llama, mistral, qwen2 or phi.</summary>
    public required string ModelType { get; init; }

    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }

    /// <summary>The raw config.json contents.</summary>
    public JsonObject Raw { get; init; } = [];
}
