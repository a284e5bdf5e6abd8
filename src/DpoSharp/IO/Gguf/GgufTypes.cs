namespace DpoSharp.IO.Gguf;

/// <summary>The type tag of a GGUF metadata value (<c>gguf_type</c> in ggml's <c>gguf.h</c>).</summary>
public enum GgufValueType : uint
{
    /// <summary>8-bit unsigned integer.</summary>
    UInt8 = 0,

    /// <summary>8-bit signed integer.</summary>
    Int8 = 1,

    /// <summary>16-bit unsigned integer.</summary>
    UInt16 = 2,

    /// <summary>16-bit signed integer.</summary>
    Int16 = 3,

    /// <summary>32-bit unsigned integer.</summary>
    UInt32 = 4,

    /// <summary>32-bit signed integer.</summary>
    Int32 = 5,

    /// <summary>32-bit IEEE float.</summary>
    Float32 = 6,

    /// <summary>Boolean, one byte (0 or 1).</summary>
    Bool = 7,

    /// <summary>UTF-8 string: u64 length, then the bytes (no terminator).</summary>
    String = 8,

    /// <summary>Array: u32 element type, u64 count, then the elements.</summary>
    Array = 9,

    /// <summary>64-bit unsigned integer.</summary>
    UInt64 = 10,

    /// <summary>64-bit signed integer.</summary>
    Int64 = 11,

    /// <summary>64-bit IEEE float.</summary>
    Float64 = 12,
}

/// <summary>The ggml tensor types DpoSharp writes (<c>ggml_type</c> in ggml's <c>ggml.h</c>).</summary>
public enum GgmlType : uint
{
    /// <summary>32-bit float.</summary>
    F32 = 0,

    /// <summary>IEEE half precision.</summary>
    F16 = 1,

    /// <summary>Blocks of 32 values: an f16 scale d, then 32 signed bytes q; value = d · q.</summary>
    Q8_0 = 8,
}

/// <summary>
/// <c>general.file_type</c> (llama.cpp's <c>llama_ftype</c>): the type most weights are stored in.
/// </summary>
public enum GgufFileType : uint
{
    /// <summary><c>LLAMA_FTYPE_ALL_F32</c>.</summary>
    AllF32 = 0,

    /// <summary><c>LLAMA_FTYPE_MOSTLY_F16</c>.</summary>
    MostlyF16 = 1,

    /// <summary><c>LLAMA_FTYPE_MOSTLY_Q8_0</c>.</summary>
    MostlyQ8_0 = 7,
}

/// <summary>
/// Token types of <c>tokenizer.ggml.token_type</c> (llama.cpp's <c>llama_token_type</c>, the SentencePiece piece
/// types).
/// </summary>
public enum GgufTokenType
{
    /// <summary>An ordinary token.</summary>
    Normal = 1,

    /// <summary>The unknown token.</summary>
    Unknown = 2,

    /// <summary>A special (control) token: BOS, EOS, chat markers.</summary>
    Control = 3,

    /// <summary>An added token that is not special.</summary>
    UserDefined = 4,

    /// <summary>A reserved slot (padding of the vocabulary up to the embedding's rows).</summary>
    Unused = 5,

    /// <summary>A byte-fallback token <c>&lt;0xNN&gt;</c>.</summary>
    Byte = 6,
}
