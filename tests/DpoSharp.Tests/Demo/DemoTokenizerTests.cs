using DpoSharp.Demo;
using DpoSharp.Tokenization;

namespace DpoSharp.Tests.Demo;

public class DemoTokenizerTests
{
    [Fact]
    public void EveryWordIsOneTokenAndAnyTextRoundTrips()
    {
        using var dir = TestPaths.CreateTempDir();
        var data = TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions { TrainQuestions = 10, EvalQuestions = 4 });
        int vocab = DemoTokenizer.Write(dir.Path, data.Words());
        var tok = HfTokenizer.Load(dir.Path);
        Assert.Equal(vocab, tok.VocabSize);
        Assert.Equal(vocab - 1, tok.EosTokenId);
        Assert.Equal(DemoTokenizer.EndOfText, tok.IdToToken(vocab - 1));
        Assert.False(tok.AddsBosToken);
        foreach (var w in data.Words())
        {
            Assert.Single(tok.Encode(w));
        }

        // "Which is larger, 37 or 5?" = Which | is | larger | , | 37 | or | 5 | ? : eight tokens.
        var ids = tok.Encode("Which is larger, 37 or 5?");
        Assert.Equal(8, ids.Count);
        Assert.Equal("Which is larger, 37 or 5?", tok.Decode(ids));
        Assert.Equal(tok.Encode(" 37"), new[] { ids[4] });

        // Text outside the word list still encodes (byte by byte) and decodes losslessly.
        const string other = "Grüße, world! 123";
        Assert.Equal(other, tok.Decode(tok.Encode(other)));
    }

    [Fact]
    public void ByteMapIsGpt2s()
    {
        var map = DemoTokenizer.BytesToUnicode();
        Assert.Equal(256, map.Distinct().Count());
        Assert.Equal('A', map['A']);
        Assert.Equal('Ġ', map[' ']);   // GPT-2 shows a space as U+0120
        Assert.Equal('Ċ', map['\n']);  // and a newline as U+010A
    }
}
