using System.Text.Json.Nodes;
using DpoSharp.Tests.Reliability;
using DpoSharp.Tokenization;

namespace DpoSharp.Tests.Tokenization;

/// <summary>
/// tokenizer.json's components (normalizer, pre_tokenizer, decoder, post_processor, added_tokens, model) are read
/// through typed accessors: a missing field or one of the wrong type is a <see cref="DpoSharpException"/> naming the
/// file and the JSON path of the field, and what was expected and found.
/// </summary>
public class TokenizerJsonPathTests
{
    /// <summary>(case, the edit as a JSON merge of top-level keys, the expected message after the file name).</summary>
    public static TheoryData<string, string, string> Cases => new()
    {
        {
            "pre-tokenizer pattern a string",
            """{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Split", "pattern": "x", "behavior": "Isolated"}]}}""",
            """$.pre_tokenizer.pretokenizers[1].pattern: expected an object, found the string "x"."""
        },
        {
            "pre-tokenizer pattern neither String nor Regex",
            """{"pre_tokenizer": {"type": "Split", "pattern": {"Glob": "*"}, "behavior": "Isolated"}}""",
            """$.pre_tokenizer.pattern: expected {"String": …} or {"Regex": …}."""
        },
        {
            "pre-tokenizer regex .NET cannot read",
            """{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}}""",
            """$.pre_tokenizer.pattern.Regex: not a regular expression .NET can read"""
        },
        {
            "split behavior unknown",
            """{"pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}}""",
            """$.pre_tokenizer.behavior: Split behavior 'sideways' is not supported"""
        },
        {
            "byte-level flag a string",
            """{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": "no"}}""",
            """$.pre_tokenizer.add_prefix_space: expected true or false, found the string "no"."""
        },
        {
            "normalizer content a number",
            """{"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": 5}]}}""",
            """$.normalizer.normalizers[1].content: expected a string, found the number 5."""
        },
        {
            "normalizer without a type",
            """{"normalizer": {"normalizers": []}}""",
            """$.normalizer.type: missing (or null); expected by $.normalizer."""
        },
        {
            "decoders an object",
            """{"decoder": {"type": "Sequence", "decoders": {"type": "Fuse"}}}""",
            """$.decoder.decoders: expected an array, found an object."""
        },
        {
            "strip decoder start negative",
            """{"decoder": {"type": "Strip", "content": " ", "start": -1, "stop": 0}}""",
            """$.decoder.start: expected a count ≥ 0, found -1."""
        },
        {
            "replace decoder with an empty pattern",
            """{"decoder": {"type": "Replace", "pattern": {"String": ""}, "content": " "}}""",
            """$.decoder.pattern.String: the pattern is empty"""
        },
        {
            "post-processor special token ids holding a string",
            """{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": ["256"], "tokens": ["<|endoftext|>"]}}}}""",
            """$.post_processor.special_tokens["<|endoftext|>"].ids[0]: expected an integer, found the string "256"."""
        },
        {
            "post-processor cls empty",
            """{"post_processor": {"type": "RobertaProcessing", "cls": [], "sep": ["</s>", 2]}}""",
            """$.post_processor.cls[0] is missing (the array has 0 item(s))."""
        },
        {
            "added token content a number",
            """{"added_tokens": [{"id": 256, "content": 7, "special": true}]}""",
            """$.added_tokens[0].content: expected a string, found the number 7."""
        },
        {
            "added token id out of range",
            """{"added_tokens": [{"id": 5000000, "content": "<x>", "special": true}]}""",
            """$.added_tokens[0].id: 5000000 is not a token id (0..4000000)."""
        },
        {
            "vocabulary id a string",
            """{"model": {"type": "BPE", "vocab": {"a": "0"}, "merges": []}}""",
            """$.model.vocab.a: expected an integer, found the string "0"."""
        },
        {
            "merges an object",
            """{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": {"a": "b"}}}""",
            """$.model.merges: expected an array of merges"""
        },
        {
            "nested Sequences 20 deep",
            """{"decoder": """ + string.Concat(Enumerable.Repeat("""{"type": "Sequence", "decoders": [""", 20)) + """{"type": "Fuse"}""" + string.Concat(Enumerable.Repeat("]}", 20)) + "}",
            """Sequence components nested more than 16 deep"""
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void AComponentFieldOfTheWrongTypeNamesTheFileAndItsJsonPath(string name, string edit, string expected)
    {
        _ = name;
        using var dir = TestPaths.CreateTempDir();
        var path = ReaderFuzzTests.WriteTokenizerSeed(dir.Path);
        var tok = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        foreach (var (key, value) in JsonNode.Parse(edit)!.AsObject())
        {
            tok[key] = value?.DeepClone();
        }

        File.WriteAllText(path, tok.ToJsonString());
        var e = Assert.Throws<DpoSharpException>(() => HfTokenizer.Load(dir.Path));
        if (expected.StartsWith('$'))
        {
            Assert.Contains(path + ": " + expected, e.Message);
        }
        else
        {
            Assert.Contains(path + ": $.", e.Message);
            Assert.Contains(expected, e.Message);
        }
    }
}
