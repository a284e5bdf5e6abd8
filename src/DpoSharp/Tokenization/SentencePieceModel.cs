using System.Text;

namespace DpoSharp.Tokenization;

/// <summary>
/// The parts of a SentencePiece <c>tokenizer.model</c> (protobuf <c>ModelProto</c>) a BPE tokenizer needs:
/// pieces with scores and types, the trainer's model type / byte fallback / special ids, and the normalizer flags.
/// </summary>
internal sealed class SentencePieceModel
{
    public const int TypeNormal = 1;
    public const int TypeUnknown = 2;
    public const int TypeControl = 3;
    public const int TypeUserDefined = 4;
    public const int TypeByte = 6;

    public List<(string Piece, float Score, int Type)> Pieces { get; } = [];

    /// <summary>1 unigram (default), 2 BPE, 3 word, 4 char.</summary>
    public int ModelType { get; private set; } = 1;

    public bool ByteFallback { get; private set; }

    public int UnkId { get; private set; }

    public int BosId { get; private set; } = 1;

    public int EosId { get; private set; } = 2;

    public int PadId { get; private set; } = -1;

    public bool AddDummyPrefix { get; private set; } = true;

    public bool RemoveExtraWhitespaces { get; private set; } = true;

    public bool EscapeWhitespaces { get; private set; } = true;

    public bool HasPrecompiledCharsMap { get; private set; }

    public static SentencePieceModel Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var m = new SentencePieceModel();
        try
        {
            var r = new ProtoReader(bytes, 0, bytes.Length);
            while (r.Next(out var field, out var wire))
            {
                switch (field)
                {
                    case 1 when wire == 2:
                        m.Pieces.Add(ReadPiece(r.Sub()));
                        break;
                    case 2 when wire == 2:
                        m.ReadTrainer(r.Sub());
                        break;
                    case 3 when wire == 2:
                        m.ReadNormalizer(r.Sub());
                        break;
                    default:
                        r.Skip(wire);
                        break;
                }
            }
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or InvalidDataException)
        {
            throw new DpoSharpException($"{path}: not a readable SentencePiece model (protobuf ModelProto): {e.Message}", e);
        }

        if (m.Pieces.Count == 0)
        {
            throw new DpoSharpException($"{path}: the SentencePiece model has no pieces.");
        }

        return m;
    }

    private static (string, float, int) ReadPiece(ProtoReader r)
    {
        string piece = string.Empty;
        var score = 0f;
        var type = TypeNormal;
        while (r.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1 when wire == 2:
                    piece = r.String();
                    break;
                case 2 when wire == 5:
                    score = r.Fixed32Float();
                    break;
                case 3 when wire == 0:
                    type = (int)r.Varint();
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return (piece, score, type);
    }

    private void ReadTrainer(ProtoReader r)
    {
        while (r.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 3 when wire == 0:
                    ModelType = (int)r.Varint();
                    break;
                case 35 when wire == 0:
                    ByteFallback = r.Varint() != 0;
                    break;
                case 40 when wire == 0:
                    UnkId = (int)r.Varint();
                    break;
                case 41 when wire == 0:
                    BosId = (int)r.Varint();
                    break;
                case 42 when wire == 0:
                    EosId = (int)r.Varint();
                    break;
                case 43 when wire == 0:
                    PadId = (int)r.Varint();
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }
    }

    private void ReadNormalizer(ProtoReader r)
    {
        while (r.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 2 when wire == 2:
                    HasPrecompiledCharsMap = r.Bytes().Length > 0;
                    break;
                case 3 when wire == 0:
                    AddDummyPrefix = r.Varint() != 0;
                    break;
                case 4 when wire == 0:
                    RemoveExtraWhitespaces = r.Varint() != 0;
                    break;
                case 5 when wire == 0:
                    EscapeWhitespaces = r.Varint() != 0;
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }
    }

    /// <summary>A minimal protobuf wire-format reader.</summary>
    private sealed class ProtoReader(byte[] data, int start, int end)
    {
        private int _pos = start;

        public bool Next(out int field, out int wire)
        {
            if (_pos >= end)
            {
                field = 0;
                wire = 0;
                return false;
            }

            var tag = Varint();
            field = (int)(tag >> 3);
            wire = (int)(tag & 7);
            return true;
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= end)
                {
                    throw new InvalidDataException("truncated varint");
                }

                var b = data[_pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return v;
                }
            }

            throw new InvalidDataException("varint too long");
        }

        /// <summary>A length prefix that fits in what is left of the message (checked before any cast or allocation).</summary>
        private int Length(string what)
        {
            var len = Varint();
            if (len > (ulong)(end - _pos))
            {
                throw new InvalidDataException($"{what} of {len} bytes runs past its message ({end - _pos} bytes left)");
            }

            return (int)len;
        }

        public ReadOnlySpan<byte> Bytes()
        {
            var len = Length("length-delimited field");

            var span = data.AsSpan(_pos, len);
            _pos += len;
            return span;
        }

        public string String() => Encoding.UTF8.GetString(Bytes());

        public ProtoReader Sub()
        {
            var len = Length("sub-message");

            var sub = new ProtoReader(data, _pos, _pos + len);
            _pos += len;
            return sub;
        }

        public float Fixed32Float()
        {
            if (_pos + 4 > end)
            {
                throw new InvalidDataException("truncated fixed32");
            }

            var f = BitConverter.ToSingle(data, _pos);
            _pos += 4;
            return f;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0:
                    Varint();
                    break;
                case 1:
                    _pos += 8;
                    break;
                case 2:
                    Bytes();
                    break;
                case 5:
                    _pos += 4;
                    break;
                default:
                    throw new InvalidDataException($"unsupported wire type {wire}");
            }

            if (_pos > end)
            {
                throw new InvalidDataException("field runs past its message");
            }
        }
    }
}

/// <summary>SentencePiece's normalizer without a charsmap: optional whitespace squeeze, dummy prefix, ▁ escaping.</summary>
internal sealed class SentencePieceNormalizer(bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces) : TextNormalizer
{
    public override string Normalize(string text)
    {
        if (removeExtraWhitespaces)
        {
            var sb = new StringBuilder(text.Length);
            foreach (var part in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (sb.Length > 0)
                {
                    sb.Append(' ');
                }

                sb.Append(part);
            }

            text = sb.ToString();
        }

        if (text.Length == 0)
        {
            return text;
        }

        if (addDummyPrefix)
        {
            text = " " + text;
        }

        return escapeWhitespaces ? text.Replace(' ', '▁') : text;
    }
}
