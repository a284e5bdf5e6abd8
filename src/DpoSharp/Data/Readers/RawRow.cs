using System.Text.Json.Nodes;

namespace DpoSharp.Data.Readers;

/// <summary>One row as read from a file, before normalization: column name to JSON value.</summary>
/// <param name="Index">0-based row index in the file.</param>
/// <param name="Line">1-based line where the row starts (text files), or null.</param>
/// <param name="Values">The columns; a missing or null cell has no entry or a null value.</param>
public sealed record RawRow(int Index, int? Line, JsonObject Values)
{
    /// <summary>"row N (line L)" for messages.</summary>
    public string Describe() => Line is int l ? $"row {Index} (line {l})" : $"row {Index}";
}
