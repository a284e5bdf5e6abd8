using System.Text.Json;
using System.Text.RegularExpressions;
using DpoSharp.Demo;

namespace DpoSharp.Tests.Demo;

public partial class TruthfulnessDatasetTests
{
    [GeneratedRegex(@"^Which is (larger|smaller), (\d+) or (\d+)\?$")]
    private static partial Regex QuestionPattern();

    private static (string Wording, int X, int Y) Parse(string prompt)
    {
        var m = QuestionPattern().Match(prompt);
        Assert.True(m.Success, prompt);
        return (m.Groups[1].Value, int.Parse(m.Groups[2].Value), int.Parse(m.Groups[3].Value));
    }

    [Fact]
    public void SameSeedGivesTheSameDataAndAnotherSeedDifferentData()
    {
        var a = TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions { Seed = 5 });
        var b = TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions { Seed = 5 });
        var c = TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions { Seed = 6 });
        Assert.Equal(a.Train, b.Train);
        Assert.Equal(a.Eval, b.Eval);
        Assert.Equal(a.SftCorpus(3), b.SftCorpus(3));
        Assert.NotEqual(a.Eval, c.Eval);
        Assert.Equal(2500, a.Train.Count);
        Assert.Equal(200, a.Eval.Count);
    }

    [Fact]
    public void AnswersFollowNumericOrderAndTheFalseAnswerIsTheOtherNumber()
    {
        var d = TruthfulnessDataset.Generate();
        foreach (var q in d.Train.Concat(d.Eval))
        {
            var (wording, x, y) = Parse(q.Prompt);
            Assert.NotEqual(x, y);
            Assert.InRange(x, 0, d.MaxNumber);
            int truth = wording == "larger" ? Math.Max(x, y) : Math.Min(x, y);
            int lie = wording == "larger" ? Math.Min(x, y) : Math.Max(x, y);
            Assert.Equal(truth.ToString(), q.TrueAnswer);
            Assert.Equal(lie.ToString(), q.FalseAnswer);
        }
    }

    [Fact]
    public void EvalNumberPairsNeverOccurInTrainingInAnyOrderOrWording()
    {
        var d = TruthfulnessDataset.Generate();
        static (int, int) Pair(string prompt)
        {
            var (_, x, y) = Parse(prompt);
            return (Math.Min(x, y), Math.Max(x, y));
        }

        var train = d.Train.Select(q => Pair(q.Prompt)).ToHashSet();
        var eval = d.Eval.Select(q => Pair(q.Prompt)).ToHashSet();
        Assert.Empty(train.Intersect(eval));
        Assert.Equal(d.Train.Count, d.Train.Select(q => q.Prompt).Distinct().Count());
        Assert.Equal(d.Eval.Count, d.Eval.Select(q => q.Prompt).Distinct().Count());
        // Both wordings are used in both splits.
        Assert.Contains(d.Eval, q => q.Prompt.Contains("larger"));
        Assert.Contains(d.Eval, q => q.Prompt.Contains("smaller"));
    }

    [Fact]
    public void SftCorpusShowsEveryTrainingQuestionOnceTrueAndOnceFalse()
    {
        var d = TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions { TrainQuestions = 300, EvalQuestions = 20 });
        var corpus = d.SftCorpus(1);
        Assert.Equal(600, corpus.Count);
        Assert.Equal(300, corpus.Count(e => e.IsTrue));
        var byPrompt = corpus.GroupBy(e => e.Prompt).ToDictionary(g => g.Key, g => g.Select(e => e.Completion).OrderBy(x => x).ToList());
        foreach (var q in d.Train)
        {
            Assert.Equal(new[] { q.TrueAnswer, q.FalseAnswer }.OrderBy(x => x), byPrompt[q.Prompt]);
        }

        // Shuffled: the true answer is not always first for a question.
        Assert.Contains(corpus.Take(50), e => !e.IsTrue);
    }

    [Fact]
    public void JsonlFilesUseTrlColumnsWithSpacePrefixedAnswers()
    {
        using var dir = TestPaths.CreateTempDir();
        var d = TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions { TrainQuestions = 10, EvalQuestions = 4 });
        var sft = Path.Combine(dir.Path, "sft.jsonl");
        var prefs = Path.Combine(dir.Path, "prefs.jsonl");
        d.WriteSftJsonl(sft);
        TruthfulnessDataset.WritePreferenceJsonl(prefs, d.Eval);
        var sftRows = File.ReadAllLines(sft).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(20, sftRows.Count);
        Assert.All(sftRows, r => Assert.StartsWith(" ", r.GetProperty("completion").GetString()));
        var prefRows = File.ReadAllLines(prefs).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(d.Eval.Select(q => " " + q.TrueAnswer), prefRows.Select(r => r.GetProperty("chosen").GetString()));
        Assert.Equal(d.Eval.Select(q => " " + q.FalseAnswer), prefRows.Select(r => r.GetProperty("rejected").GetString()));
    }

    [Fact]
    public void ImpossibleSizesAreRejected()
    {
        var e = Assert.Throws<DpoSharpException>(() => TruthfulnessDataset.Generate(new TruthfulnessDatasetOptions { MaxNumber = 9, TrainQuestions = 1000 }));
        Assert.Contains("max_number", e.Message);
    }
}
