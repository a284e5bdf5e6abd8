using System.Text.Json.Nodes;
using DpoSharp.Cli;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Scoring;

/// <summary>
/// <c>dposharp score</c> on text datasets (standard, implicit prompt, conversational; JSONL, CSV, JSON): the scores
/// must equal an independent computation (the test tokenizes with TRL's rules and a hand-rendered ChatML, runs the
/// model on each sequence alone and sums log-softmax with plain loops), and the scores of the same pairs given
/// pre-tokenized.
/// </summary>
public class ScoreDatasetShapesTests
{
    private const int Eos = TinyCheckpoints.EosTokenId;

    private const string ChatMl =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private static readonly (string System, string Prompt, string Chosen, string Rejected)[] Standard =
    [
        ("", "Is the sky blue?", " Yes, it is.", " No."),
        ("Be brief.", "2+2=", " 4", " five, I think"),
        ("", "Name a fruit:", " apple", " a rock"),
    ];

    private static string Model(string root, bool chatTemplate = true, bool tokenizer = true)
    {
        var dir = TinyCheckpoints.Write(Path.Combine(root, "m"), "llama", seed: 5, withTokenizer: tokenizer);
        if (tokenizer && chatTemplate)
        {
            var cfgPath = Path.Combine(dir, "tokenizer_config.json");
            var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
            Assert.Null(cfg["chat_template"]); // the tiny tokenizer has none: this test adds ChatML
            cfg["chat_template"] = ChatMl;
            File.WriteAllText(cfgPath, cfg.ToJsonString());
        }

        return dir;
    }

    /// <summary>Sum over the completion of log softmax(logits[t-1])[token t], from one unbatched forward.</summary>
    private static double IndependentLogp(ICausalLM model, int[] prompt, int[] completion)
    {
        var seq = prompt.Concat(completion).Select(x => (long)x).ToArray();
        float[] logits;
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            logits = model.Forward(tensor(seq).unsqueeze(0)).cpu().data<float>().ToArray(); // (1, T, V)
        }

        int v = model.Config.VocabSize;
        double total = 0;
        for (int t = prompt.Length; t < seq.Length; t++)
        {
            int off = (t - 1) * v;
            double max = double.NegativeInfinity;
            for (int k = 0; k < v; k++)
            {
                max = Math.Max(max, logits[off + k]);
            }

            double sum = 0;
            for (int k = 0; k < v; k++)
            {
                sum += Math.Exp(logits[off + k] - max);
            }

            total += logits[off + seq[t]] - max - Math.Log(sum);
        }

        return total;
    }

    /// <summary>TRL's text rule: prompt alone (no BOS: this tokenizer adds none), completions with EOS appended.</summary>
    private static (int[] P, int[] C, int[] R) TokenizeStandard(HfTokenizer tok, string prompt, string chosen, string rejected) =>
        (tok.Encode(prompt).ToArray(), [.. tok.Encode(chosen), Eos], [.. tok.Encode(rejected), Eos]);

    private static List<JsonObject> Run(string[] args, int expectedRc = 0)
    {
        var err = new StringWriter();
        int rc = DpoSharpCli.Run(args, new StringWriter(), err);
        Assert.True(rc == expectedRc, $"exit {rc}: {err}");
        var output = args[Array.IndexOf(args, "--output") + 1];
        return [.. File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!.AsObject())];
    }

    private static string WritePretokenized(string path, IEnumerable<(int[] P, int[] C, int[] R)> pairs)
    {
        static JsonArray A(int[] ids) => new([.. ids.Select(x => (JsonNode)x)]);
        File.WriteAllLines(path, pairs.Select(p => new JsonObject
        {
            ["prompt_input_ids"] = A(p.P),
            ["chosen_input_ids"] = A(p.C),
            ["rejected_input_ids"] = A(p.R),
        }.ToJsonString()));
        return path;
    }

    private static void AssertScores(List<JsonObject> rows, IReadOnlyList<(int[] P, int[] C, int[] R)> expectedPairs, ICausalLM model, List<JsonObject>? pretokenized)
    {
        Assert.Equal(expectedPairs.Count, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            var (p, c, r) = expectedPairs[i];
            Assert.Equal(i, rows[i]["index"]!.GetValue<int>());
            Assert.Null(rows[i]["dropped"]);
            double chosen = rows[i]["chosen_logps"]!.GetValue<double>();
            double rejected = rows[i]["rejected_logps"]!.GetValue<double>();
            double expChosen = IndependentLogp(model, p, c);
            double expRejected = IndependentLogp(model, p, r);
            Assert.True(Math.Abs(chosen - expChosen) < 1e-4, $"row {i} chosen {chosen} vs {expChosen}");
            Assert.True(Math.Abs(rejected - expRejected) < 1e-4, $"row {i} rejected {rejected} vs {expRejected}");
            if (pretokenized is not null)
            {
                Assert.Equal(i, pretokenized[i]["index"]!.GetValue<int>());
                Assert.True(Math.Abs(chosen - pretokenized[i]["chosen_logps"]!.GetValue<double>()) < 1e-5);
                Assert.True(Math.Abs(rejected - pretokenized[i]["rejected_logps"]!.GetValue<double>()) < 1e-5);
            }
        }
    }

    [Fact]
    public void StandardJsonlAndImplicitPromptCsvMatchIndependentTokenizationAndPretokenizedScores()
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = Model(tmp.Path);
        var tok = HfTokenizer.Load(dir);
        var data = Path.Combine(tmp.Path, "std.jsonl");
        File.WriteAllLines(data, Standard.Select(s =>
        {
            var o = new JsonObject { ["prompt"] = s.Prompt, ["chosen"] = s.Chosen, ["rejected"] = s.Rejected };
            if (s.System.Length > 0)
            {
                o["system"] = s.System;
            }

            return o.ToJsonString();
        }));
        var expected = Standard.Select(s => TokenizeStandard(tok, s.System.Length > 0 ? s.System + "\n\n" + s.Prompt : s.Prompt, s.Chosen, s.Rejected)).ToList();
        var rows = Run(["score", "--model", dir, "--dataset", data, "--output", Path.Combine(tmp.Path, "std.out.jsonl"), "--batch-size", "2"]);
        var pre = Run(["score", "--model", dir, "--dataset", WritePretokenized(Path.Combine(tmp.Path, "pre.jsonl"), expected),
            "--output", Path.Combine(tmp.Path, "pre.out.jsonl"), "--batch-size", "2"]);
        using var model = ModelLoader.Load(dir);
        AssertScores(rows, expected, model, pre);

        // Implicit prompt (HH style) in a CSV: the prompt is everything up to and including the last shared "\n\nAssistant:".
        var csv = Path.Combine(tmp.Path, "hh.csv");
        string Q(string s) => "\"" + s.Replace("\"", "\"\"") + "\"";
        var hh = new[] { ("\n\nHuman: Hi there\n\nAssistant:", " Hello!", " Go away."), ("\n\nHuman: Sky?\n\nAssistant: Blue.\n\nHuman: Sure?\n\nAssistant:", " Yes", " Green") };
        File.WriteAllText(csv, "chosen,rejected\n" + string.Concat(hh.Select(h => Q(h.Item1 + h.Item2) + "," + Q(h.Item1 + h.Item3) + "\n")));
        var hhRows = Run(["score", "--model", dir, "--dataset", csv, "--output", Path.Combine(tmp.Path, "hh.out.jsonl")]);
        AssertScores(hhRows, [.. hh.Select(h => TokenizeStandard(tok, h.Item1, h.Item2, h.Item3))], model, null);
    }

    [Fact]
    public void ConversationalJsonWithMappedColumnsMatchesHandRenderedChatMlAndPretokenizedScores()
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = Model(tmp.Path);
        var tok = HfTokenizer.Load(dir);
        var convs = new[]
        {
            (new[] { ("system", "Be nice."), ("user", "Hi?") }, "Hello!", "Go."),
            (new[] { ("user", "1+1?") }, "2", "3"),
            (new[] { ("user", "Color?"), ("assistant", "Red."), ("user", "Other?") }, "Blue.", "No."),
        };
        static JsonArray Msgs(IEnumerable<(string Role, string Content)> ms) =>
            new([.. ms.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content })]);
        var json = new JsonArray([.. convs.Select(c => (JsonNode)new JsonObject
        {
            ["question"] = Msgs(c.Item1),
            ["good"] = Msgs([("assistant", c.Item2)]),
            ["bad"] = Msgs([("assistant", c.Item3)]),
        })]);
        var data = Path.Combine(tmp.Path, "conv.json");
        File.WriteAllText(data, json.ToJsonString());

        // ChatML by hand: the prompt with the generation prompt; the completion closes its turn (no EOS appended).
        static string Render(IEnumerable<(string Role, string Content)> ms) => string.Concat(ms.Select(m => $"<|im_start|>{m.Role}\n{m.Content}<|im_end|>\n"));
        var expected = convs.Select(c =>
        {
            var prompt = Render(c.Item1) + "<|im_start|>assistant\n";
            return (tok.Encode(prompt).ToArray(), tok.Encode(c.Item2 + "<|im_end|>\n").ToArray(), tok.Encode(c.Item3 + "<|im_end|>\n").ToArray());
        }).ToList();
        var rows = Run(["score", "--model", dir, "--dataset", data, "--output", Path.Combine(tmp.Path, "conv.out.jsonl"),
            "--prompt-column", "question", "--chosen-column", "good", "--rejected-column", "bad", "--batch-size", "3"]);
        var pre = Run(["score", "--model", dir, "--dataset", WritePretokenized(Path.Combine(tmp.Path, "pre.jsonl"), expected),
            "--output", Path.Combine(tmp.Path, "pre.out.jsonl"), "--batch-size", "3"]);
        using var model = ModelLoader.Load(dir);
        AssertScores(rows, expected, model, pre);
    }

    [Fact]
    public void RowsDroppedByTruncationKeepTheirLineWithAReasonAndKeptRowsAreTruncatedAsInTraining()
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = Model(tmp.Path);
        var tok = HfTokenizer.Load(dir);
        var rows = new[] { ("Q: one?", " a long answer here", " b"), ("A prompt that is far too long to fit.", " x", " y"), ("Q?", " yes", " no") };
        var data = Path.Combine(tmp.Path, "d.jsonl");
        File.WriteAllLines(data, rows.Select(r => new JsonObject { ["prompt"] = r.Item1, ["chosen"] = r.Item2, ["rejected"] = r.Item3 }.ToJsonString()));
        var outPath = Path.Combine(tmp.Path, "out.jsonl");
        var output = Run(["score", "--model", dir, "--dataset", data, "--output", outPath, "--max-length", "12", "--max-prompt-length", "0"]);
        Assert.Equal(3, output.Count);
        Assert.Equal(1, output[1]["index"]!.GetValue<int>());
        Assert.Contains("max_length", output[1]["dropped"]!.GetValue<string>());
        Assert.Null(output[1]["chosen_logps"]);
        Assert.Null(output[1]["rejected_logps"]);
        using var model = ModelLoader.Load(dir);
        foreach (int i in new[] { 0, 2 })
        {
            var (p, c, r) = TokenizeStandard(tok, rows[i].Item1, rows[i].Item2, rows[i].Item3);
            int budget = 12 - p.Length;
            Assert.True(budget > 0);
            Assert.Equal(i, output[i]["index"]!.GetValue<int>());
            Assert.Null(output[i]["dropped"]);
            Assert.True(Math.Abs(output[i]["chosen_logps"]!.GetValue<double>() - IndependentLogp(model, p, c[..Math.Min(budget, c.Length)])) < 1e-4);
            Assert.True(Math.Abs(output[i]["rejected_logps"]!.GetValue<double>() - IndependentLogp(model, p, r[..Math.Min(budget, r.Length)])) < 1e-4);
        }

        // With the model as its own reference: equal log-probs, zero rewards, sigmoid loss ln 2; the dropped row stays null.
        var withRef = Run(["score", "--model", dir, "--dataset", data, "--output", Path.Combine(tmp.Path, "ref.jsonl"), "--max-length", "12", "--max-prompt-length", "0", "--ref-model", dir]);
        Assert.Equal(3, withRef.Count);
        foreach (var field in new[] { "ref_chosen_logps", "ref_rejected_logps", "chosen_reward", "rejected_reward", "loss" })
        {
            Assert.Null(withRef[1][field]);
        }

        foreach (int i in new[] { 0, 2 })
        {
            Assert.True(Math.Abs(withRef[i]["ref_chosen_logps"]!.GetValue<double>() - output[i]["chosen_logps"]!.GetValue<double>()) < 1e-5);
            Assert.True(Math.Abs(withRef[i]["chosen_reward"]!.GetValue<double>()) < 1e-5);
            Assert.True(Math.Abs(withRef[i]["loss"]!.GetValue<double>() - Math.Log(2)) < 1e-5);
        }

        // Pre-tokenized rows get no truncation by default, but an explicit limit applies to them too.
        var (p0, c0, r0) = TokenizeStandard(tok, rows[0].Item1, rows[0].Item2, rows[0].Item3);
        Assert.True(p0.Length + c0.Length > 12);
        var pre = WritePretokenized(Path.Combine(tmp.Path, "pre.jsonl"), [(p0, c0, r0)]);
        var full = Run(["score", "--model", dir, "--dataset", pre, "--output", Path.Combine(tmp.Path, "pre1.jsonl")]);
        Assert.True(Math.Abs(full[0]["chosen_logps"]!.GetValue<double>() - IndependentLogp(model, p0, c0)) < 1e-4);
        var cut = Run(["score", "--model", dir, "--dataset", pre, "--output", Path.Combine(tmp.Path, "pre2.jsonl"), "--max-length", "12"]);
        Assert.True(Math.Abs(cut[0]["chosen_logps"]!.GetValue<double>() - IndependentLogp(model, p0, c0[..(12 - p0.Length)])) < 1e-4);
    }

    [Fact]
    public void PretokenizedJsonInADatasetFolderSplitScoresLikePretokenizedJsonl()
    {
        using var tmp = TestPaths.CreateTempDir();
        var dir = Model(tmp.Path);
        var tok = HfTokenizer.Load(dir);
        var pairs = Standard.Select(s => TokenizeStandard(tok, s.Prompt, s.Chosen, s.Rejected)).ToList();
        var jsonl = WritePretokenized(Path.Combine(tmp.Path, "pre.jsonl"), pairs);
        var folder = Directory.CreateDirectory(Path.Combine(tmp.Path, "hf", "data")).FullName;
        File.WriteAllLines(Path.Combine(folder, "train-00000-of-00001.jsonl"), ["{\"prompt\":\"x\",\"chosen\":\" a\",\"rejected\":\" b\"}"]);
        var array = new JsonArray([.. File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l))]);
        File.WriteAllText(Path.Combine(folder, "test-00000-of-00001.json"), array.ToJsonString());
        var viaFolder = Run(["score", "--model", dir, "--dataset", Path.Combine(tmp.Path, "hf"), "--split", "test", "--output", Path.Combine(tmp.Path, "a.jsonl")]);
        var viaJsonl = Run(["score", "--model", dir, "--dataset", jsonl, "--output", Path.Combine(tmp.Path, "b.jsonl")]);
        using var model = ModelLoader.Load(dir);
        AssertScores(viaFolder, pairs, model, viaJsonl);

        // The loader's pre-tokenized rows get the same checks: an empty prompt cannot predict the first completion token.
        File.WriteAllText(Path.Combine(folder, "test-00000-of-00001.json"), "[{\"prompt_input_ids\":[],\"chosen_input_ids\":[1],\"rejected_input_ids\":[2]}]");
        var err = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["score", "--model", dir, "--dataset", Path.Combine(tmp.Path, "hf"), "--split", "test", "--output", Path.Combine(tmp.Path, "c.jsonl")], new StringWriter(), err));
        Assert.Contains("prompt ids are empty", err.ToString());
        Assert.False(File.Exists(Path.Combine(tmp.Path, "c.jsonl")));
    }

    [Fact]
    public void BadInputsExitTwoWithoutOutput()
    {
        using var tmp = TestPaths.CreateTempDir();
        var noTok = TinyCheckpoints.Write(Path.Combine(tmp.Path, "notok"), "llama", withTokenizer: false);
        var withTok = Model(Path.Combine(tmp.Path, "t"));
        var noTemplate = Model(Path.Combine(tmp.Path, "n"), chatTemplate: false);
        var std = Path.Combine(tmp.Path, "std.jsonl");
        File.WriteAllLines(std, ["{\"prompt\":\"Q\",\"chosen\":\" a\",\"rejected\":\" b\"}"]);
        var missing = Path.Combine(tmp.Path, "missing.jsonl");
        File.WriteAllLines(missing, ["{\"prompt\":\"Q\",\"chosen\":\" a\",\"worse\":\" b\"}"]);
        var conv = Path.Combine(tmp.Path, "conv.jsonl");
        File.WriteAllLines(conv, ["{\"prompt\":[{\"role\":\"user\",\"content\":\"Q\"}],\"chosen\":[{\"role\":\"assistant\",\"content\":\"a\"}],\"rejected\":[{\"role\":\"assistant\",\"content\":\"b\"}]}"]);
        foreach (var (model, data, expected) in new[]
        {
            (noTok, std, "no tokenizer"),
            (withTok, missing, "worse"),
            (noTemplate, conv, "chat_template"),
        })
        {
            var outPath = Path.Combine(tmp.Path, "out.jsonl");
            var err = new StringWriter();
            int rc = DpoSharpCli.Run(["score", "--model", model, "--dataset", data, "--output", outPath], new StringWriter(), err);
            Assert.True(rc == 2, $"{data}: exit {rc}: {err}");
            Assert.Contains(expected, err.ToString());
            Assert.Contains(data == missing ? "rejected" : data, err.ToString());
            Assert.Empty(Directory.GetFiles(tmp.Path, "out.jsonl*"));
        }
    }
}
