using System.Text;
using static DpoSharp.Tokenization.Readers.ReaderSupport;

namespace DpoSharp.Tokenization.Readers;

/// <summary>Reads byte-level BPE as separate vocabulary and merges files: <c>vocab.json</c> + <c>merges.txt</c>
/// (GPT-2 layout) or <c>encoder.json</c> + <c>vocab.bpe</c> (OpenAI's original GPT-2 files).</summary>
internal static class VocabMergesReader
{
    /// <summary>Reads <c>vocab.json</c> + <c>merges.txt</c>.</summary>
    public static TokenizerFileContents Read(string vocabPath, string mergesPath, bool addPrefixSpace)
    {
        var (bpe, vocab) = LoadByteLevelFiles(vocabPath, mergesPath);
        return new TokenizerFileContents
        {
            Source = vocabPath,
            Bpe = bpe,
            PreTokenizer = new ByteLevelPreTokenizer(addPrefixSpace, true),
            Decoder = new ByteLevelDecoder(),
            Vocab = vocab,
            UsePostProcessorDefaults = false,
        };
    }

    /// <summary>Reads <c>encoder.json</c> + <c>vocab.bpe</c>, with GPT-2's tokenizer defaults: bos = eos = unk =
    /// &lt;|endoftext|&gt; when the vocabulary has it.</summary>
    public static TokenizerFileContents ReadOpenAiGpt2(string encoderPath, string vocabBpePath, bool addPrefixSpace)
    {
        var (bpe, vocab) = LoadByteLevelFiles(encoderPath, vocabBpePath);
        return new TokenizerFileContents
        {
            Source = encoderPath,
            Bpe = bpe,
            PreTokenizer = new ByteLevelPreTokenizer(addPrefixSpace, true),
            Decoder = new ByteLevelDecoder(),
            Vocab = vocab,
            UsePostProcessorDefaults = false,
            DefaultSpecialTokens = vocab.ContainsKey("<|endoftext|>")
                ? [("bos_token", "<|endoftext|>"), ("eos_token", "<|endoftext|>"), ("unk_token", "<|endoftext|>")]
                : [],
        };
    }

    private static (BpeModel Bpe, Dictionary<string, int> Vocab) LoadByteLevelFiles(string vocabPath, string mergesPath)
    {
        using var doc = ParseJson(vocabPath);
        var vocab = ReadVocab(IO.JsonAt.Root(doc, vocabPath));
        var merges = new List<(string, string)>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath, Encoding.UTF8))
        {
            lineNo++;
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal)))
            {
                continue;
            }

            var sp = line.IndexOf(' ', 1);
            if (sp <= 0)
            {
                throw new DpoSharpException($"{mergesPath}: line {lineNo} is not a merge 'left right'.");
            }

            merges.Add((line[..sp], line[(sp + 1)..]));
        }

        // Both files are named: a merge whose tokens are missing may be a damaged vocabulary as well as damaged merges.
        return (new BpeModel(vocab, merges, null, false, false, false, $"{mergesPath} (with {vocabPath})"), vocab);
    }
}
