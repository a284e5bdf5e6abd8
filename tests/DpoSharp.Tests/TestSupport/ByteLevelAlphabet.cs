namespace DpoSharp.Tests.TestSupport;

/// <summary>GPT-2's byte-to-character table for byte-level BPE vocabularies, written out independently of the library.</summary>
internal static class ByteLevelAlphabet
{
    /// <summary>
    /// The 256 symbols by byte value: printable bytes stand for themselves, the others map to U+0100 onwards in
    /// byte order.
    /// </summary>
    public static string[] Chars()
    {
        var chars = new string[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            chars[b] = ((char)(printable ? b : 256 + extra++)).ToString();
        }

        return chars;
    }
}
