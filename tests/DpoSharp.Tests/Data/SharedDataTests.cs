using System.Text.Json;
using DpoSharp.Cli;
using DpoSharp.Data;
using DpoSharp.Tokenization;
using Xunit.Abstractions;

namespace DpoSharp.Tests.Data;

/// <summary>The real torchtune preference samples and real tokenizers from ../shared.</summary>
public class SharedDataTests(ITestOutputHelper output)
{
    private static readonly DatasetOptions StackExchange = new() { PromptColumn = "question", ChosenColumn = "response_j", RejectedColumn = "response_k" };

    [SkippableFact]
    public void HhRlhfTinyIsConversationalWithExtractedPrompt()
    {
        var path = TestPaths.SharedOrSkip(output, "data/preferences/torchtune/hh_rlhf_tiny.json");
        var ds = PreferenceDatasetLoader.Load(path);
        Assert.Equal(PreferenceFormat.Conversational, ds.Format);
        var e = Assert.Single(ds.Examples);
        Assert.True(e.PromptExtracted);
        Assert.Equal([new ChatMessage("user", "What do I do when I have a hole in my trousers?")], e.PromptMessages);
        Assert.Equal([new ChatMessage("assistant", "Fix the hole.")], e.ChosenMessages);
        Assert.Equal([new ChatMessage("assistant", "Take them off.")], e.RejectedMessages);
    }

    [SkippableFact]
    public void StackExchangePairedTinyThroughColumnMapping()
    {
        var path = TestPaths.SharedOrSkip(output, "data/preferences/torchtune/stack_exchange_paired_tiny.json");
        var ds = PreferenceDatasetLoader.Load(path, StackExchange);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var rows = doc.RootElement.EnumerateArray().ToArray();
        Assert.Equal(25, rows.Length);
        Assert.Equal(PreferenceFormat.Standard, ds.Format);
        Assert.Equal(rows.Select(r => r.GetProperty("question").GetString()), ds.Examples.Select(e => e.Prompt));
        Assert.Equal(rows.Select(r => r.GetProperty("response_j").GetString()), ds.Examples.Select(e => e.Chosen));
        Assert.Equal(rows.Select(r => r.GetProperty("response_k").GetString()), ds.Examples.Select(e => e.Rejected));

        var ex = Assert.Throws<DpoSharpException>(() => PreferenceDatasetLoader.Load(path));
        Assert.Contains("missing column 'chosen'. Columns present: question, response_j, response_k", ex.Message);
    }

    [SkippableFact]
    public void StackExchangeWithPhi2TokenizerKeepEnd()
    {
        var path = TestPaths.SharedOrSkip(output, "data/preferences/torchtune/stack_exchange_paired_tiny.json");
        var model = TestPaths.SharedOrSkip(output, "data/tokenizers/phi-2");
        var tok = HfTokenizer.Load(model);
        var ds = PreferenceDatasetLoader.Load(path, StackExchange);
        var options = new TokenizationOptions { MaxLength = 384, MaxPromptLength = 128, TruncationMode = TruncationMode.KeepEnd };
        var result = new PairTokenizer(tok, options).Tokenize(ds);
        Assert.Equal(25, result.Pairs.Count);
        var eos = tok.EosTokenId!.Value;
        Assert.Equal(50256, eos);
        Assert.False(tok.AddsBosToken);
        for (var i = 0; i < 25; i++)
        {
            // Independent expectation: plain Encode, keep the last 128 prompt ids, EOS after each completion,
            // then cut completions to the room max_length leaves.
            var prompt = tok.Encode(ds.Examples[i].Prompt!).ToArray();
            var expectedPrompt = prompt.Length > 128 ? prompt[^128..] : prompt;
            var room = 384 - expectedPrompt.Length;
            int[] chosen = [.. tok.Encode(ds.Examples[i].Chosen!), eos];
            int[] rejected = [.. tok.Encode(ds.Examples[i].Rejected!), eos];
            Assert.Equal(expectedPrompt, result.Pairs[i].PromptIds);
            Assert.Equal(chosen.Take(room), result.Pairs[i].ChosenIds);
            Assert.Equal(rejected.Take(room), result.Pairs[i].RejectedIds);
            Assert.True(result.Pairs[i].PromptIds.Length + result.Pairs[i].ChosenIds.Length <= 384);
        }

        Assert.Equal(ds.Examples.Count(e => tok.Encode(e.Prompt!).Count > 128), result.Stats.PromptTruncated);
    }

    [SkippableFact]
    public void Llama2AddsBosOnceAndEos()
    {
        var model = TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2");
        var tok = HfTokenizer.Load(model);
        Assert.True(tok.AddsBosToken);
        PreferenceExample Text(string p) => new() { Format = PreferenceFormat.Standard, Prompt = p, Chosen = " Fix the hole.", Rejected = " Take them off." };
        var result = new PairTokenizer(tok).Tokenize([Text("\n\nHuman: What do I do?\n\nAssistant:"), Text("<s>[INST] What do I do? [/INST]")]);
        var bos = tok.BosTokenId!.Value;
        foreach (var pair in result.Pairs)
        {
            Assert.Equal(bos, pair.PromptIds[0]);
            Assert.Equal(1, pair.PromptIds.Count(id => id == bos));
            Assert.Equal(tok.EosTokenId, pair.ChosenIds[^1]);
            Assert.Equal(1, pair.ChosenIds.Count(id => id == tok.EosTokenId));
        }

        // The tokenizer's own special-token path (post-processor) gives the same prompt ids as the pair tokenizer.
        Assert.Equal(tok.Encode("\n\nHuman: What do I do?\n\nAssistant:", addSpecialTokens: true), result.Pairs[0].PromptIds);
    }

    [SkippableFact]
    public void Gpt2HhTextGetsNoBosAndOneEos()
    {
        var model = TestPaths.SharedOrSkip(output, "data/tokenizers/gpt2-openai");
        var tok = HfTokenizer.Load(model);
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "hh.jsonl");
        File.WriteAllText(path, "{\"chosen\": \"\\n\\nHuman: What is 2+2?\\n\\nAssistant: It is 4.\", \"rejected\": \"\\n\\nHuman: What is 2+2?\\n\\nAssistant: It is 5.<|endoftext|>\"}\n");
        var result = new PairTokenizer(tok).Tokenize(PreferenceDatasetLoader.Load(path));
        var pair = Assert.Single(result.Pairs);
        Assert.Equal(tok.Encode("\n\nHuman: What is 2+2?\n\nAssistant:"), pair.PromptIds);
        Assert.Equal([.. tok.Encode(" It is 4."), 50256], pair.ChosenIds);
        Assert.Equal([.. tok.Encode(" It is 5."), 50256], pair.RejectedIds); // the text's own EOS is not doubled
        Assert.Equal(0, result.Stats.NonPrefix);
        Assert.Equal("\n\nHuman: What is 2+2?\n\nAssistant: It is 4.<|endoftext|>", tok.Decode([.. pair.PromptIds, .. pair.ChosenIds]));
    }

    [SkippableFact]
    public void HhRlhfTinyWithLlama2ChatTemplate()
    {
        var path = TestPaths.SharedOrSkip(output, "data/preferences/torchtune/hh_rlhf_tiny.json");
        var model = TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2");
        var tok = HfTokenizer.Load(model);
        var result = new PairTokenizer(tok).Tokenize(PreferenceDatasetLoader.Load(path));
        var pair = Assert.Single(result.Pairs);

        // Llama-2's template: bos_token + '[INST] ' + user + ' [/INST]', then ' ' + assistant + ' ' + eos_token.
        var encoded = new PairTokenizer(tok).Encode(PreferenceDatasetLoader.Load(path).Examples[0]);
        Assert.Equal("<s>[INST] What do I do when I have a hole in my trousers? [/INST]", encoded.PromptText);
        Assert.Equal(" Fix the hole. </s>", encoded.ChosenText);
        Assert.Equal(" Take them off. </s>", encoded.RejectedText);
        Assert.Equal(tok.Encode("<s>[INST] What do I do when I have a hole in my trousers? [/INST]"), pair.PromptIds);
        Assert.Equal(1, pair.PromptIds.Count(id => id == tok.BosTokenId)); // the template's BOS, not a second one
        Assert.Equal(tok.Encode(" Fix the hole. </s>"), pair.ChosenIds); // the template's EOS, none appended
        Assert.Equal(1, pair.ChosenIds.Count(id => id == tok.EosTokenId));
        Assert.Equal(0, result.Stats.TemplateMismatch);

        var stdout = new StringWriter();
        Assert.Equal(0, DpoSharpCli.Run(["data", "--dataset", path, "--model", model, "--show", "1"], stdout, new StringWriter()));
        var shown = stdout.ToString();
        output.WriteLine(shown);

        // Exactly the decoded ids, special tokens kept, one line per completion (no wrapping).
        Assert.Contains("chosen:   " + tok.Decode(pair.PromptIds) + DpoSharp.Cli.Commands.DataCommand.Boundary + tok.Decode(pair.ChosenIds) + Environment.NewLine, shown);
        Assert.Contains("[INST] What do I do when I have a hole in my trousers? [/INST]" + DpoSharp.Cli.Commands.DataCommand.Boundary, shown);
        Assert.Contains("chosen:   <s>", shown);
        Assert.Contains("Fix the hole. </s>", shown);
    }

    [SkippableFact]
    public void ConversationalDataWithoutChatTemplateIsBadInput()
    {
        var path = TestPaths.SharedOrSkip(output, "data/preferences/torchtune/hh_rlhf_tiny.json");
        var model = TestPaths.SharedOrSkip(output, "data/tokenizers/phi-2");
        var err = new StringWriter();
        Assert.Equal(2, DpoSharpCli.Run(["data", "--dataset", path, "--model", model], new StringWriter(), err));
        Assert.Contains("chat_template", err.ToString());
    }

    [SkippableFact]
    public void TruthyDpoStyleFolderWithPhi2()
    {
        var model = TestPaths.SharedOrSkip(output, "data/tokenizers/phi-2");
        // The layout and columns of a downloaded truthy-dpo-v0.1 (id, source, system, prompt, chosen, rejected).
        using var dir = TestPaths.CreateTempDir();
        var folder = Directory.CreateDirectory(Path.Combine(dir.Path, "truthy-dpo-v0.1")).FullName;
        File.WriteAllText(Path.Combine(folder, "README.md"), "---\nlicense: cc-by-4.0\n---\n");
        var rows = Enumerable.Range(0, 4).Select(i => DataFiles.Obj(
            $$"""{"id": "{{i}}", "source": "truthy", "system": "You are an unbiased, honest assistant.", "prompt": "Is the moon made of cheese ({{i}})?", "chosen": "No, it is rock.", "rejected": "Yes, cheddar."}""")).ToList();
        DataFiles.WriteParquet(Path.Combine(folder, "truthy-dpo.parquet"), rows);

        var stdout = new StringWriter();
        var rc = DpoSharpCli.Run(["data", "--dataset", folder, "--model", model, "--show", "3"], stdout, new StringWriter());
        var text = stdout.ToString();
        output.WriteLine(text);
        Assert.Equal(0, rc);
        Assert.Contains("4 of 4", text);
        Assert.Contains("chosen:   You are an unbiased, honest assistant.↵\n↵\nIs the moon made of cheese (0)?" + DpoSharp.Cli.Commands.DataCommand.Boundary + "No, it is rock.<|endoftext|>", text);
        Assert.Contains("(2)?" + DpoSharp.Cli.Commands.DataCommand.Boundary, text);
        Assert.DoesNotContain("(3)?" + DpoSharp.Cli.Commands.DataCommand.Boundary, text);
    }

    [SkippableFact]
    public void CliShowsPairsWithSpecialTokensAndBoundary()
    {
        var path = TestPaths.SharedOrSkip(output, "data/preferences/torchtune/stack_exchange_paired_tiny.json");
        var model = TestPaths.SharedOrSkip(output, "data/tokenizers/phi-2");
        using var dir = TestPaths.CreateTempDir();
        var outFile = Path.Combine(dir.Path, "normalized.jsonl");
        var stdout = new StringWriter();
        var rc = DpoSharpCli.Run(
            ["data", "--dataset", path, "--model", model, "--prompt-column", "question", "--chosen-column", "response_j", "--rejected-column", "response_k",
             "--max-length", "256", "--max-prompt-length", "64", "--truncation-mode", "keep_start", "--show", "2", "--output", outFile],
            stdout, new StringWriter());
        var text = stdout.ToString();
        output.WriteLine(text);
        Assert.Equal(0, rc);
        Assert.Contains("25 of 25", text);
        Assert.Contains("<|endoftext|>", text);
        Assert.Contains("pair 0 ", text);
        Assert.Contains("pair 1 ", text);
        Assert.DoesNotContain("pair 2 ", text);
        Assert.Contains("chosen:   I'm writing a code using Java Swing", text); // keep_start keeps the question's start
        Assert.Contains(DpoSharp.Cli.Commands.DataCommand.Boundary, text);
        Assert.Equal(25, File.ReadAllLines(outFile).Length);
    }
}
