using DpoSharp.Tokenization;
using DpoSharp.Tokenization.ChatTemplates;
using Xunit.Abstractions;

namespace DpoSharp.Tests.Tokenization;

/// <summary>Published chat templates (exact text of their tokenizer_config.json, JSON-decoded) rendered to the
/// strings their model cards / Hugging Face's docs document, plus the Jinja semantics they rely on.</summary>
public sealed class ChatTemplateTests(ITestOutputHelper output)
{
    // Qwen/Qwen2-7B-Instruct (ChatML with a default system prompt).
    private const string Qwen2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    // Qwen/Qwen2.5-7B-Instruct (tools, {%- -%} whitespace control everywhere).
    private const string Qwen25 = """
        {%- if tools %}
            {{- '<|im_start|>system\n' }}
            {%- if messages[0]['role'] == 'system' %}
                {{- messages[0]['content'] }}
            {%- else %}
                {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
            {%- endif %}
            {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
            {%- for tool in tools %}
                {{- "\n" }}
                {{- tool | tojson }}
            {%- endfor %}
            {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
        {%- else %}
            {%- if messages[0]['role'] == 'system' %}
                {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
            {%- else %}
                {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
            {%- endif %}
        {%- endif %}
        {%- for message in messages %}
            {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
            {%- elif message.role == "assistant" %}
                {{- '<|im_start|>' + message.role }}
                {%- if message.content %}
                    {{- '\n' + message.content }}
                {%- endif %}
                {%- for tool_call in message.tool_calls %}
                    {%- if tool_call.function is defined %}
                        {%- set tool_call = tool_call.function %}
                    {%- endif %}
                    {{- '\n<tool_call>\n{"name": "' }}
                    {{- tool_call.name }}
                    {{- '", "arguments": ' }}
                    {{- tool_call.arguments | tojson }}
                    {{- '}\n</tool_call>' }}
                {%- endfor %}
                {{- '<|im_end|>\n' }}
            {%- elif message.role == "tool" %}
                {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
                    {{- '<|im_start|>user' }}
                {%- endif %}
                {{- '\n<tool_response>\n' }}
                {{- message.content }}
                {{- '\n</tool_response>' }}
                {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
                    {{- '<|im_end|>\n' }}
                {%- endif %}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
        {%- endif %}

        """;

    // meta-llama/Meta-Llama-3-8B-Instruct.
    private const string Llama3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    // HuggingFaceH4/zephyr-7b-beta (newlines between tags: trim_blocks / lstrip_blocks matter).
    private const string Zephyr = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

    // mistralai/Mistral-7B-Instruct-v0.1.
    private const string Mistral = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

    // microsoft/Phi-3-mini-4k-instruct.
    private const string Phi3 = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

    private static readonly ChatMessage[] ExampleChat =
    [
        new("user", "Hello, how are you?"),
        new("assistant", "I'm doing great. How can I help you today?"),
        new("user", "I'd like to show off how chat templating works!"),
    ];

    private static readonly ChatMessage[] Terse =
    [
        new("system", "You are terse."),
        new("user", "Hello!"),
        new("assistant", "Hi."),
        new("user", "What is 2+2?"),
    ];

    private static string Render(string template, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, string? bos = "<s>", string? eos = "</s>") =>
        ChatTemplate.Parse(template).Render(messages, addGenerationPrompt, new Dictionary<string, object?> { ["bos_token"] = bos, ["eos_token"] = eos, ["tools"] = null });

    [Fact]
    public void Qwen2ChatMlAddsDefaultSystemPrompt()
    {
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            Render(Qwen2, [new("user", "Hi")], addGenerationPrompt: true));
        Assert.Equal(
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
            Render(Qwen2, Terse, addGenerationPrompt: false));
    }

    [Fact]
    public void Qwen25WithAndWithoutTools()
    {
        Assert.Equal(
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
            Render(Qwen25, Terse, addGenerationPrompt: true));
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
            Render(Qwen25, [new("user", "Hi")], addGenerationPrompt: false));

        var tool = new Dictionary<string, object?>
        {
            ["type"] = "function",
            ["function"] = new Dictionary<string, object?> { ["name"] = "get_time", ["parameters"] = new Dictionary<string, object?>(), ["strict"] = true },
        };
        var rendered = ChatTemplate.Parse(Qwen25).Render(new Dictionary<string, object?>
        {
            ["messages"] = new[] { new ChatMessage("user", "What time is it?") },
            ["tools"] = new[] { tool },
            ["add_generation_prompt"] = true,
        });
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
            "{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {}, \"strict\": true}}\n</tools>\n\n" +
            "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n" +
            "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\nWhat time is it?<|im_end|>\n<|im_start|>assistant\n",
            rendered);
    }

    [Fact]
    public void Llama3TrimsContentAndAddsBosOnce()
    {
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            Render(Llama3, [new("system", "You are a helpful assistant"), new("user", "  Hello \n")], addGenerationPrompt: true, bos: "<|begin_of_text|>", eos: "<|eot_id|>"));
    }

    [Fact]
    public void ZephyrKeepsNewlinesAfterOutputTags()
    {
        ChatMessage[] pirate = [new("system", "You are a friendly chatbot who always responds in the style of a pirate"), new("user", "How many helicopters can a human eat in one sitting?")];
        Assert.Equal(
            "<|system|>\nYou are a friendly chatbot who always responds in the style of a pirate</s>\n<|user|>\nHow many helicopters can a human eat in one sitting?</s>\n<|assistant|>\n",
            Render(Zephyr, pirate, addGenerationPrompt: true));
        Assert.Equal(
            "<|user|>\nHello, how are you?</s>\n<|assistant|>\nI'm doing great. How can I help you today?</s>\n<|user|>\nI'd like to show off how chat templating works!</s>\n",
            Render(Zephyr, ExampleChat, addGenerationPrompt: false));
    }

    [Fact]
    public void MistralInstructAndItsRaisedErrors()
    {
        Assert.Equal(
            "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> [INST] I'd like to show off how chat templating works! [/INST]",
            Render(Mistral, ExampleChat, addGenerationPrompt: false));

        var e1 = Assert.Throws<ChatTemplateRaisedException>(() => Render(Mistral, [new("user", "a"), new("user", "b")], false));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e1.TemplateMessage);
        Assert.Contains("Conversation roles must alternate", e1.Message);
        var e2 = Assert.Throws<ChatTemplateRaisedException>(() => Render(Mistral, [new("user", "u"), new("system", "s")], false));
        Assert.Equal("Only user and assistant roles are supported!", e2.TemplateMessage);
        Assert.IsAssignableFrom<DpoSharpException>(e2);
    }

    [Fact]
    public void Phi3GenerationPromptOrEos()
    {
        Assert.Equal(
            "<|system|>\nYou are terse.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\nHi.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n",
            Render(Phi3, Terse, addGenerationPrompt: true, eos: "<|endoftext|>"));
        Assert.Equal(
            "<|user|>\nHello<|end|>\n<|endoftext|>",
            Render(Phi3, [new("user", "Hello")], addGenerationPrompt: false, eos: "<|endoftext|>"));
    }

    [SkippableFact]
    public void Llama2TemplateFromSharedTokenizerConfig()
    {
        var dir = TestPaths.SharedOrSkip(output, "data/tokenizers/llama-2");
        var gpt2 = TestPaths.SharedOrSkip(output, "data/tokenizers/gpt2-openai");

        var tok = HfTokenizer.Load(dir);
        Assert.NotNull(tok.ChatTemplate);
        Assert.Equal(
            "<s>[INST] <<SYS>>\nYou are a pirate\n<</SYS>>\n\nHi [/INST] Arr </s><s>[INST] Bye [/INST]",
            tok.ApplyChatTemplate([new("system", "You are a pirate"), new("user", "Hi  "), new("assistant", " Arr"), new("user", "Bye")], addGenerationPrompt: false));
        Assert.Equal("<s>[INST] Hi [/INST]", tok.ApplyChatTemplate([new("user", "Hi")], addGenerationPrompt: true));
        var e = Assert.Throws<ChatTemplateRaisedException>(() => tok.ApplyChatTemplate([new("assistant", "x")], false));
        Assert.Contains("alternate", e.TemplateMessage);

        var noTemplate = Assert.Throws<DpoSharpException>(() => HfTokenizer.Load(gpt2).ApplyChatTemplate([new("user", "x")], false));
        Assert.Contains("chat_template", noTemplate.Message);
    }

    [Theory]
    // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before a block tag goes.
    [InlineData("{% if true %}\n  x\n{% endif %}\n", "  x\n")]
    [InlineData("  {% if true %}y{% endif %}", "y")]
    [InlineData("a\n    {% if true %}\nb\n    {% endif %}\nc", "a\nb\nc")]
    [InlineData("{{ 'a' }}\n{{ 'b' }}", "a\nb")]
    [InlineData("a  {%- if true -%}  b  {%- endif %}", "ab")]
    [InlineData("a {{- ' b ' -}} c", "a b c")]
    [InlineData("a{# comment #}\nb", "ab")]
    [InlineData("x {%+ if true %}y{% endif %}", "x y")]
    [InlineData("{% if true +%}\nz{% endif %}", "\nz")]
    public void WhitespaceControl(string template, string expected) =>
        Assert.Equal(expected, ChatTemplate.Parse(template).Render(new Dictionary<string, object?>()));

    [Theory]
    [InlineData("{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", "10TrueFalse3|21FalseFalse3|32FalseTrue3|")]
    [InlineData("{% for x in [] %}a{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}", "2242")]
    [InlineData("{% for x in range(5) %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}", "02")]
    [InlineData("{% set ns = namespace(found=false, n=0) %}{% for x in [1, 2] %}{% set ns.found = true %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.found }} {{ ns.n }}", "True 3")]
    [InlineData("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "1")]
    [InlineData("{% if false %}a{% elif 1 > 2 %}b{% elif 'x' in 'xyz' and not none %}c{% else %}d{% endif %}", "c")]
    [InlineData("{{ [1, 2, 3, 4][1:] }} {{ [1, 2, 3, 4][:-1] }} {{ [1, 2, 3, 4][::-1] }} {{ 'hello'[1:3] }} {{ [1, 2][-1] }}", "[2, 3, 4] [1, 2, 3] [4, 3, 2, 1] el 2")]
    [InlineData("{{ 7 // 2 }} {{ 7 / 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'ab' * 2 }}", "3 3.5 1 2 1024 7 9 abab")]
    [InlineData("{{ 'a' ~ 1 ~ none }} {{ 'x' if 1 == 1.0 else 'y' }} {{ 'x' if false }}|", "a1None x |")]
    [InlineData("{{ 3 in [1, 2, 3] }} {{ 'k' in {'k': 1} }} {{ 4 not in [1] }} {{ 1 < 2 < 3 }} {{ 'b' > 'a' }}", "True True True True True")]
    [InlineData("{{ '  Hi  ' | trim }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 'hello world' | capitalize }}|{{ 'hello world' | title }}|{{ [1, 2] | length }}|{{ 'abc' | length }}", "Hi|AB|ab|Hello world|Hello World|2|3")]
    [InlineData("{{ undefined_var | default('d') }}|{{ '' | default('e', true) }}|{{ none | default('f') }}|{{ [1, 2, 3] | join('-') }}|{{ [1, 2] | first }}{{ [1, 2] | last }}", "d|e|None|1-2-3|12")]
    [InlineData("{{ '42' | int + 1 }} {{ 3 | string ~ 'x' }} {{ 'a-b-c' | replace('-', '+') }} {{ [3, 1, 2] | sort | list }} {{ [1, 1, 2] | unique | list }} {{ [1, 2] | reverse | list }}", "43 3x a+b+c [1, 2, 3] [1, 2] [2, 1]")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2} | items %}{{ k }}={{ v }};{% endfor %}{% for k, v in {'c': 3}.items() %}{{ k }}{{ v }}{% endfor %}", "a=1;b=2;c3")]
    [InlineData("{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b', 'z') }} {{ {'a': 1}.get('b') }} {{ {'a': 1, 'b': 2}.keys() | list }}", "1 z None ['a', 'b']")]
    [InlineData("{{ '  x  '.strip() }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'a,b'.split(',') }}|{{ ' a  b '.split() }}|{{ 'hi'.upper() }}|{{ 'a-b'.replace('-', '') }}|{{ 'ab cd'.title() }}", "x|True|True|['a', 'b']|['a', 'b']|HI|ab|Ab Cd")]
    [InlineData("{{ x is defined }} {{ x is undefined }} {{ none is none }} {{ 'a' is string }} {{ 1 is number }} {{ 3 is odd }} {{ 6 is divisibleby 3 }} {{ {} is mapping }} {{ 1 is not string }}", "False True True True True True True True True")]
    [InlineData("{{ {'a': [1, 'x', true, none, 1.5]} | tojson }}|{{ {'a': 1, 'b': [1, 2]} | tojson(indent=2) }}|{{ 'é\"\n' | tojson }}", "{\"a\": [1, \"x\", true, null, 1.5]}|{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}|\"é\\\"\\n\"")]
    [InlineData("{{ [{'r': 'a', 'c': 1}, {'r': 'b', 'c': 2}] | selectattr('r', 'equalto', 'b') | map(attribute='c') | list }} {{ [{'r': 'a'}, {'r': 'b'}] | rejectattr('r', 'eq', 'a') | list | length }}", "[2] 1")]
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C') }}", "Hi A! Hi B? Hi C!")]
    [InlineData("{% set s %}in{{ 1 + 1 }}{% endset %}[{{ s }}]", "[in2]")]
    [InlineData("{% generation %}gen{% endgeneration %}", "gen")]
    [InlineData("{{ {'a': {'b': 1}} | tojson }}|{% set d = {'x': {'y': 2}} %}{{ d.x.y }}", "{\"a\": {\"b\": 1}}|2")]
    [InlineData("{{ \"it's\" }} {{ 'say \"hi\"' }} {{ 'a\\tb' }} {{ 1.0 }} {{ 2.5e3 }} {{ True }} {{ None }}", "it's say \"hi\" a\tb 1.0 2500.0 True None")]
    [InlineData("{% for m in messages %}{{ m.role }}:{{ m['content'] }};{% endfor %}{{ messages | length }}", "user:a;assistant:b;2")]
    public void Expressions(string template, string expected)
    {
        var context = new Dictionary<string, object?>
        {
            ["messages"] = new[] { new ChatMessage("user", "a"), new ChatMessage("assistant", "b") },
        };
        Assert.Equal(expected, ChatTemplate.Parse(template).Render(context));
    }

    [Theory]
    [InlineData("ab\n{% include 'x.jinja' %}", "unsupported tag '{% include %}'", "line 2, column 1")]
    [InlineData("{% if x %}abc", "unclosed '{% if %}'", "line 1, column 1")]
    [InlineData("{% for m in messages %}x{% endif %}", "unclosed '{% for %}'", "line 1")]
    [InlineData("x {{ 'a' | shout }}", "unsupported filter '|shout'", "line 1")]
    [InlineData("{{ 1 +  }}", "unexpected '}}'", "line 1")]
    [InlineData("{{ 'abc' ", "unclosed {{ … }} tag", "line 1, column 1")]
    [InlineData("{% endfor %}", "without a matching opening tag", "line 1")]
    [InlineData("{{ x is positive }}", "unsupported test 'is positive'", "line 1")]
    [InlineData("{{ 'a' + 1 }}", "cannot add str and int", "line 1")]
    [InlineData("{{ foo.bar }}", "'foo' is undefined", "line 1")]
    [InlineData("{{ nope() }}", "'nope' is undefined", "line 1")]
    [InlineData("{{ 'x'.zfill(3) }}", "unsupported string method 'zfill()'", "line 1")]
    public void UnsupportedOrBrokenTemplatesNameTheConstructAndPosition(string template, string what, string where)
    {
        var e = Assert.ThrowsAny<DpoSharpException>(() => ChatTemplate.Parse(template).Render(new Dictionary<string, object?>()));
        Assert.Contains(what, e.Message);
        Assert.Contains(where, e.Message);
    }
}
