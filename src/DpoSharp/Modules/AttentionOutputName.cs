namespace DpoSharp.Modules;

/// <summary>The Hugging Face name of <see cref="QkvAttention"/>'s output projection.</summary>
internal enum AttentionOutputName
{
    /// <summary><c>o_proj</c> (Llama, Mistral, Qwen2).</summary>
    OProj,

    /// <summary><c>dense</c> (Phi).</summary>
    Dense,
}
