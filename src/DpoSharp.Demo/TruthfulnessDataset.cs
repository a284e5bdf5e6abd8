using System.Text.Json;

namespace DpoSharp.Demo;

/// <summary>
/// One demo question with its single true answer and one plausible false answer (the other number of the
/// question: the false answer is always something the question itself makes plausible).
/// </summary>
/// <param name="Prompt">The question text, e.g. <c>Which is larger, 37 or 52?</c>.</param>
/// <param name="TrueAnswer">The correct answer, e.g. <c>52</c>.</param>
/// <param name="FalseAnswer">The plausible wrong answer, e.g. <c>37</c>.</param>
public sealed record TruthfulQuestion(string Prompt, string TrueAnswer, string FalseAnswer);

/// <summary>One supervised fine-tuning example (prompt/completion) and whether its completion is true.</summary>
/// <param name="Prompt">The question.</param>
/// <param name="Completion">The answer shown to the model.</param>
/// <param name="IsTrue">Whether <paramref name="Completion"/> is the true answer.</param>
public sealed record SftExample(string Prompt, string Completion, bool IsTrue);

/// <summary>Settings of <see cref="TruthfulnessDataset.Generate"/>; validated there.</summary>
public sealed class TruthfulnessDatasetOptions
{
    /// <summary>Seed of the generator: the same seed gives the same data, byte for byte.</summary>
    /// <value>Default 42.</value>
    public int Seed { get; init; } = 42;

    /// <summary>Numbers in questions are 0..MaxNumber.</summary>
    /// <value>Default 39.</value>
    public int MaxNumber { get; init; } = 39;

    /// <summary>Questions used for SFT and DPO training.</summary>
    /// <value>Default 2500.</value>
    public int TrainQuestions { get; init; } = 2500;

    /// <summary>Held-out questions for evaluation (their number pairs never occur in training, in any order or wording).</summary>
    /// <value>Default 200.</value>
    public int EvalQuestions { get; init; } = 200;

    /// <summary>Throws <see cref="DpoSharpException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (MaxNumber < 4)
        {
            throw new DpoSharpException($"max_number must be at least 4 (got {MaxNumber}).");
        }

        if (TrainQuestions < 1 || EvalQuestions < 1)
        {
            throw new DpoSharpException($"train_questions and eval_questions must be positive (got {TrainQuestions}, {EvalQuestions}).");
        }

        long pairs = (long)(MaxNumber + 1) * MaxNumber / 2;
        long evalPairs = (EvalQuestions + 1) / 2;
        // Each unordered pair yields 4 questions (2 orders x 2 wordings); eval takes 2 per held-out pair.
        if (evalPairs >= pairs || TrainQuestions > (pairs - evalPairs) * 4)
        {
            throw new DpoSharpException(
                $"train_questions {TrainQuestions} + eval_questions {EvalQuestions} are too many for max_number {MaxNumber} " +
                $"({pairs} number pairs, 4 questions each, eval uses 2 per pair); raise max_number or ask for fewer questions.");
        }
    }
}

/// <summary>
/// The demo's deterministic "truthfulness" data: comparison questions about two numbers ("Which is larger, 37 or
/// 52?" / "Which is smaller, …?"), each with one true answer and one plausible false answer (the other number).
/// The truth follows a rule (numeric order) that generalises to number pairs never seen in training, and train and
/// evaluation questions use disjoint number pairs, so evaluation measures generalisation, not memorisation.
/// <para>
/// The SFT corpus shows every training question twice, once with its true answer and once with its false answer,
/// so a model fine-tuned on it learns the answer format and to name one of the two numbers, but has no signal about
/// which one is right (about 50% truthful). DPO pairs use chosen = true answer, rejected = false answer.
/// </para>
/// </summary>
public sealed class TruthfulnessDataset
{
    /// <summary>The two wordings; the first asks for the larger number, the second for the smaller.</summary>
    public static readonly IReadOnlyList<string> Wordings = ["larger", "smaller"];

    private TruthfulnessDataset(IReadOnlyList<TruthfulQuestion> train, IReadOnlyList<TruthfulQuestion> eval, int maxNumber)
    {
        Train = train;
        Eval = eval;
        MaxNumber = maxNumber;
    }

    /// <summary>Training questions (for SFT and DPO).</summary>
    public IReadOnlyList<TruthfulQuestion> Train { get; }

    /// <summary>Held-out evaluation questions.</summary>
    public IReadOnlyList<TruthfulQuestion> Eval { get; }

    /// <summary>Largest number used.</summary>
    public int MaxNumber { get; }

    /// <summary>Generates the data set for <paramref name="options"/> (deterministic in <see cref="TruthfulnessDatasetOptions.Seed"/>).</summary>
    public static TruthfulnessDataset Generate(TruthfulnessDatasetOptions? options = null)
    {
        options ??= new TruthfulnessDatasetOptions();
        options.Validate();
        var rng = new Random(options.Seed);
        int n = options.MaxNumber + 1;
        var pairs = new List<(int A, int B)>();
        for (int a = 0; a < n; a++)
        {
            for (int b = a + 1; b < n; b++)
            {
                pairs.Add((a, b));
            }
        }

        Shuffle(pairs, rng);
        // Hold out enough pairs for the eval questions (each pair gives 4 questions; use 2 per pair for variety),
        // then draw train questions from the rest.
        int evalPairs = (options.EvalQuestions + 1) / 2;
        var evalSet = pairs.Take(evalPairs).ToList();
        var trainSet = pairs.Skip(evalPairs).ToList();
        var eval = Draw(evalSet, options.EvalQuestions, rng);
        var train = Draw(trainSet, options.TrainQuestions, rng);
        return new TruthfulnessDataset(train, eval, options.MaxNumber);
    }

    /// <summary>Builds one question: <paramref name="wording"/> 0 asks for the larger of (x, y), 1 for the smaller.</summary>
    public static TruthfulQuestion MakeQuestion(int x, int y, int wording)
    {
        if (x == y)
        {
            throw new ArgumentException("the two numbers must differ");
        }

        int larger = Math.Max(x, y), smaller = Math.Min(x, y);
        int truth = wording == 0 ? larger : smaller;
        int lie = wording == 0 ? smaller : larger;
        return new TruthfulQuestion($"Which is {Wordings[wording]}, {x} or {y}?", truth.ToString(System.Globalization.CultureInfo.InvariantCulture), lie.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The SFT corpus: every training question once with its true and once with its false answer, shuffled
    /// (deterministically in <paramref name="seed"/>), so exactly half the answers are true.
    /// </summary>
    public IReadOnlyList<SftExample> SftCorpus(int seed = 0)
    {
        var list = new List<SftExample>(Train.Count * 2);
        foreach (var q in Train)
        {
            list.Add(new SftExample(q.Prompt, q.TrueAnswer, true));
            list.Add(new SftExample(q.Prompt, q.FalseAnswer, false));
        }

        Shuffle(list, new Random(seed));
        return list;
    }

    /// <summary>
    /// The pre-tokens of every question and answer as GPT-2's byte-level regex splits them (leading spaces included:
    /// <c>"Which"</c>, <c>" is"</c>, <c>" larger"</c>, <c>","</c>, <c>" 37"</c>, <c>"?"</c>, …), in a fixed order;
    /// <see cref="DemoTokenizer.Write"/> makes each one token.
    /// </summary>
    public IReadOnlyList<string> Words()
    {
        var words = new List<string> { "Which", " is", ",", " or", "?" };
        words.AddRange(Wordings.Select(w => " " + w));
        for (int i = 0; i <= MaxNumber; i++)
        {
            words.Add(" " + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return words;
    }

    /// <summary>The completion text of an answer: a space, then the answer (so it is one token after the prompt).</summary>
    public static string Completion(string answer) => " " + answer;

    /// <summary>Writes the SFT corpus as JSONL rows <c>{"prompt": …, "completion": " 52"}</c> (TRL's prompt-completion format).</summary>
    public void WriteSftJsonl(string path, int seed = 0)
        => WriteJsonl(path, SftCorpus(seed).Select(e => new Dictionary<string, string> { ["prompt"] = e.Prompt, ["completion"] = Completion(e.Completion) }));

    /// <summary>Writes preference pairs as JSONL rows <c>{"prompt", "chosen", "rejected"}</c>: chosen = true answer.</summary>
    public static void WritePreferenceJsonl(string path, IEnumerable<TruthfulQuestion> questions)
        => WriteJsonl(path, questions.Select(q => new Dictionary<string, string> { ["prompt"] = q.Prompt, ["chosen"] = Completion(q.TrueAnswer), ["rejected"] = Completion(q.FalseAnswer) }));

    private static void WriteJsonl(string path, IEnumerable<Dictionary<string, string>> rows)
    {
        using var writer = new StreamWriter(path);
        foreach (var row in rows)
        {
            writer.Write(JsonSerializer.Serialize(row));
            writer.Write('\n');
        }
    }

    private static List<TruthfulQuestion> Draw(List<(int A, int B)> pairs, int count, Random rng)
    {
        // Cycle through the pairs (each time with a fresh random order and wording), so questions spread over pairs.
        var result = new List<TruthfulQuestion>(count);
        var seen = new HashSet<(int, int, int)>();
        int round = 0;
        while (result.Count < count)
        {
            foreach (var (a, b) in pairs)
            {
                if (result.Count == count)
                {
                    break;
                }

                bool swap = rng.Next(2) == 1;
                int wording = rng.Next(2);
                // Later rounds take the variants not drawn yet.
                for (int k = 0; k < 4 && seen.Contains((swap ? b : a, swap ? a : b, wording)); k++)
                {
                    if (k % 2 == 0)
                    {
                        swap = !swap;
                    }
                    else
                    {
                        wording = 1 - wording;
                    }
                }

                int x = swap ? b : a, y = swap ? a : b;
                if (seen.Add((x, y, wording)))
                {
                    result.Add(MakeQuestion(x, y, wording));
                }
            }

            if (++round > 4)
            {
                break;
            }
        }

        Shuffle(result, rng);
        return result;
    }

    private static void Shuffle<T>(IList<T> list, Random rng)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }
}
