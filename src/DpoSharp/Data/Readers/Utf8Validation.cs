using System.Text;
using System.Text.Unicode;

namespace DpoSharp.Data.Readers;

/// <summary>Checks that a text file is valid UTF-8 and reports where it is not.</summary>
internal static class Utf8Validation
{
    /// <summary>Strips a UTF-8 BOM and throws <see cref="DpoSharpException"/> naming the line and byte offset of the
    /// first invalid byte; <paramref name="rowAt"/> (data, offset) names the row there.</summary>
    public static ReadOnlyMemory<byte> Check(byte[] bytes, string file, Func<ReadOnlyMemory<byte>, int, string>? rowAt = null)
    {
        ReadOnlyMemory<byte> data = bytes;
        if (bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF)
        {
            data = data[3..];
        }

        if (Utf8.IsValid(data.Span))
        {
            return data;
        }

        var span = data.Span;
        var offset = 0;
        while (offset < span.Length)
        {
            if (Rune.DecodeFromUtf8(span[offset..], out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                break;
            }

            offset += consumed;
        }

        var line = 1 + span[..offset].Count((byte)'\n');
        var fileOffset = offset + (bytes.Length - data.Length);
        throw new DpoSharpException(
            $"{file}{(rowAt is null ? "" : " " + rowAt(data, offset))}: invalid UTF-8 at byte offset {fileOffset} (line {line}, byte 0x{span[offset]:X2}). " +
            "Save the file as UTF-8 (for example `iconv -f latin1 -t utf-8`).");
    }
}
