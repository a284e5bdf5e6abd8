using DpoSharp.Cli.Options;
using DpoSharp.Data;
using DpoSharp.Models.Lora;
using DpoSharp.Training;
using DpoSharp.Training.Engine;

namespace DpoSharp.Tests.Cli.Options;

public class OptionBinderTests
{
    [Fact]
    public void EveryOptionHasAKebabFlagAndHelp()
    {
        Assert.Contains(OptionBinder.Options<DpoOptions>(), x => x.Name == "per_device_train_batch_size" && x.Flag == "--per-device-train-batch-size");
        Assert.Contains(OptionBinder.Options<DpoOptions>(), x => x.Name == "f_alpha_divergence_coef" && x.Default == "1");
        Assert.Contains(OptionBinder.Options<DpoOptions>(), x => x.Name == "adam_beta2" && x.Default == "0.999");
        Assert.All(OptionBinder.Options<DpoOptions>(), x =>
        {
            Assert.Equal("--" + x.Name.Replace('_', '-'), x.Flag);
            Assert.False(string.IsNullOrWhiteSpace(x.Description), x.Name);
        });
        Assert.Equal(OptionBinder.Options<DpoOptions>().Count, OptionBinder.Options<DpoOptions>().Select(x => x.Name).Distinct().Count());
    }

    [Fact]
    public void LoadsYamlWithListsNullsAndNumbers()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(path, """
            # a comment
            beta: 0.25
            learning_rate: 5e-7
            loss_type: [sigmoid, sft]
            loss_weights:
              - 1.0
              - 0.5
            max_prompt_length: null
            max_completion_length: 64
            disable_dropout: false
            report_to: jsonl, png
            output_dir: 'out dir'
            max_steps: 1e2
            """);
        var o = OptionBinder.LoadFile<DpoOptions>(path);
        Assert.Equal(0.25, o.Beta);
        Assert.Equal(5e-7, o.LearningRate);
        Assert.Equal(["sigmoid", "sft"], o.LossType);
        Assert.Equal([1.0, 0.5], o.LossWeights!);
        Assert.Null(o.MaxPromptLength);
        Assert.Equal(64, o.MaxCompletionLength);
        Assert.False(o.DisableDropout);
        Assert.Equal([ReportTarget.Jsonl, ReportTarget.Png], o.ReportTo);
        Assert.Equal("out dir", o.OutputDir);
        Assert.Equal(100, o.MaxSteps);
        o.Validate();
    }

    [Fact]
    public void LoadsJson()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "run.json");
        File.WriteAllText(path, """{ "beta": 0.5, "loss_type": ["ipo"], "reference_free": true, "eval_steps": null, "per_device_train_batch_size": 2, "device": "cpu" }""");
        var o = OptionBinder.LoadFile<DpoOptions>(path);
        Assert.Equal(0.5, o.Beta);
        Assert.Equal(["ipo"], o.LossType);
        Assert.True(o.ReferenceFree);
        Assert.Null(o.EvalSteps);
        Assert.Equal(2, o.PerDeviceTrainBatchSize);
        Assert.Equal("cpu", o.Device);
        o.Validate();
    }

    [Fact]
    public void FlagsOverrideTheFile()
    {
        var o = OptionBinder.FromYaml<DpoOptions>("learning_rate: 1e-5\nsave_steps: 50\noutput_dir: a\n");
        OptionBinder.Apply(o, [
            new("--learning-rate", "2e-6"),
            new("max-steps", "7"),
            new("output_dir", "b"),
            new("--loss-type", "sigmoid,bco_pair"),
            new("--resume", "true"),
            new("--ref-model", "null"),
        ]);
        Assert.Equal(2e-6, o.LearningRate);
        Assert.Equal(7, o.MaxSteps);
        Assert.Equal(50, o.SaveSteps);
        Assert.Equal("b", o.OutputDir);
        Assert.Equal(["sigmoid", "bco_pair"], o.LossType);
        Assert.True(o.Resume);
        Assert.Null(o.RefModel);
        Assert.Equal("2E-06", OptionBinder.Get(o, "learning-rate"), ignoreCase: true);
        Assert.Equal("sigmoid,bco_pair", OptionBinder.Get(o, "loss_type"));
        o.Validate();
        Assert.Equal(2, o.CreateLoss().Parts.Count);
    }

    [Fact]
    public void ParsesCommandLineFlagsOverAConfigFile()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "run.yaml");
        File.WriteAllText(path, "beta: 0.2\nmax_steps: 10\nresume: false\n");
        var flags = OptionBinder.ParseArguments<DpoOptions>(["--max-steps", "3", "--resume", "--learning-rate=5e-7", "--disable-dropout", "false", "--loss-type", "ipo,sft"]);
        Assert.Equal(["max_steps", "resume", "learning_rate", "disable_dropout", "loss_type"], flags.Select(f => f.Key));
        var o = OptionBinder.Load<DpoOptions>(path, flags);
        Assert.Equal((0.2, 3, true, 5e-7, false), (o.Beta, o.MaxSteps, o.Resume, o.LearningRate, o.DisableDropout));
        Assert.Equal(["ipo", "sft"], o.LossType);
        Assert.Contains("Did you mean --max-steps?", Assert.Throws<DpoSharpException>(() => OptionBinder.ParseArguments<DpoOptions>(["--max-step", "3"])).Message);
        Assert.Contains("needs a value", Assert.Throws<DpoSharpException>(() => OptionBinder.ParseArguments<DpoOptions>(["--beta"])).Message);
        Assert.Contains("unexpected", Assert.Throws<DpoSharpException>(() => OptionBinder.ParseArguments<DpoOptions>(["beta"])).Message);
        Assert.Contains("beta", Assert.Throws<DpoSharpException>(() => OptionBinder.Load<DpoOptions>(null, [new("beta", "0")])).Message);
    }

    [Fact]
    public void UnknownKeysNameTheLineAndCloseNames()
    {
        var ex = Assert.Throws<DpoSharpException>(() => OptionBinder.FromYaml<DpoOptions>("beta: 0.1\nlearning_rat: 1e-6\n", "run.yaml"));
        Assert.Contains("run.yaml: line 2", ex.Message);
        Assert.Contains("learning_rate", ex.Message);
        var flag = Assert.Throws<DpoSharpException>(() => OptionBinder.Apply(new DpoOptions(), "--max-step", "3"));
        Assert.Contains("Did you mean --max-steps?", flag.Message);
        var json = Assert.Throws<DpoSharpException>(() => OptionBinder.FromJson<DpoOptions>("""{"betta": 1}""", "c.json"));
        Assert.Contains("beta", json.Message);
        Assert.Contains("c.json", json.Message);
    }

    [Theory]
    [InlineData("learning_rate", "fast", "a number")]
    [InlineData("max_steps", "1.5", "a whole number")]
    [InlineData("disable_dropout", "maybe", "true or false")]
    [InlineData("loss_weights", "1,x", "list of numbers")]
    [InlineData("beta", "null", "needs a value")]
    public void UnparsableValuesNameTheOption(string key, string value, string fragment)
    {
        var ex = Assert.Throws<DpoSharpException>(() => OptionBinder.Apply(new DpoOptions(), key, value));
        Assert.Contains(key, ex.Message);
        Assert.Contains(fragment, ex.Message);
    }

    [Fact]
    public void MalformedFilesAreReported()
    {
        using var dir = TestPaths.CreateTempDir();
        var yaml = Path.Combine(dir.Path, "bad.yaml");
        File.WriteAllText(yaml, "beta: [0.1\n");
        var yamlError = Assert.Throws<DpoSharpException>(() => OptionBinder.LoadFile<DpoOptions>(yaml)).Message;
        Assert.Contains("bad.yaml", yamlError);
        Assert.Contains("invalid YAML", yamlError);
        var json = Path.Combine(dir.Path, "bad.json");
        File.WriteAllText(json, "{ \"beta\": }");
        Assert.Contains("invalid JSON", Assert.Throws<DpoSharpException>(() => OptionBinder.LoadFile<DpoOptions>(json)).Message);
        Assert.Contains("does not exist", Assert.Throws<DpoSharpException>(() => OptionBinder.LoadFile<DpoOptions>(Path.Combine(dir.Path, "none.yaml"))).Message);
        Assert.Contains("line 2", Assert.Throws<DpoSharpException>(() => OptionBinder.FromYaml<DpoOptions>("beta: 1\nbeta: 2\n")).Message);
        Assert.Contains("one value", Assert.Throws<DpoSharpException>(() => OptionBinder.FromYaml<DpoOptions>("beta: [1, 2]\n")).Message);
    }

    [Fact]
    public void YamlRoundTrips()
    {
        var o = new DpoOptions { Beta = 0.3, LossType = ["ipo", "sft"], LossWeights = [1, 0.25], RefModel = "it's here", MaxLength = null };
        var back = OptionBinder.FromYaml<DpoOptions>(OptionBinder.ToYaml(o));
        Assert.Equal(OptionBinder.ToDictionary(o).Select(kv => (kv.Key, Text: OptionBinder.Get(back, kv.Key))), OptionBinder.ToDictionary(back).Select(kv => (kv.Key, Text: OptionBinder.Get(o, kv.Key))));
        Assert.Equal("it's here", back.RefModel);
        Assert.Null(back.MaxLength);
        Assert.Equal([1, 0.25], back.LossWeights!);
    }

    [Fact]
    public void SampleConfigReproducesTheSeedRun()
    {
        var o = OptionBinder.LoadFile<DpoOptions>(Path.Combine(TestPaths.RepoRoot, "samples", "phi2-truthy-dpo.yaml"));
        o.Validate();
        Assert.Equal("./phi-2", o.Model);
        Assert.Equal("./truthy-dpo-v0.1", o.Dataset);
        Assert.Equal(0.1, o.Beta);
        Assert.Equal(1e-6, o.LearningRate);
        Assert.Equal(4, o.PerDeviceTrainBatchSize);
        Assert.Equal(1024, o.MaxLength);
        Assert.Equal(512, o.MaxPromptLength);
        Assert.Equal(["sigmoid"], o.LossType);
    }

    [Fact]
    public void LoraSampleConfigIsTheSeedRunWithLora()
    {
        var o = OptionBinder.LoadFile<DpoOptions>(Path.Combine(TestPaths.RepoRoot, "samples", "phi2-truthy-dpo-lora.yaml"));
        o.Validate();
        Assert.True(o.UsePeft);
        Assert.Equal(16, o.LoraR);
        Assert.Equal(32, o.LoraAlpha);
        Assert.Equal(["q_proj", "k_proj", "v_proj", "dense"], o.LoraTargetModules);
        Assert.True(o.Memory.EffectiveGradientCheckpointing(lora: true));
        Assert.Equal(0.1, o.Beta);
        Assert.Equal(4, o.PerDeviceTrainBatchSize * o.GradientAccumulationSteps);
        Assert.Equal(1024, o.MaxLength);
        Assert.Equal(512, o.MaxPromptLength);
        using var phi2 = DpoSharp.Models.ModelLoader.Build(DpoSharp.Models.ModelPresets.Get("phi-2"), TorchSharp.torch.META);
        Assert.Equal(4L * 32 * 16 * (2560 + 2560), phi2.AdapterParameterCount(o.Lora));   // r·(in + out) on 4 projections × 32 layers
    }

    /// <summary>Every option of <c>dposharp train</c>, in order: name, type, default and help (what <c>train --help</c>,
    /// the README table and the saved config show). Changed deliberately by issue 10: fixed-value options are enums
    /// (truncation_mode, lr_scheduler_type, eval_strategy, report_to), descriptions say "null: …" instead of a second
    /// default, and the shared ones fit SFT too; by issue 12: padding_free works (listed again), prefix_sharing added.</summary>
    private static readonly (string Name, Type Type, string Default, string Description)[] DpoOptionList =
    [
        ("model", typeof(string), "null", "model directory to train (HF layout)"),
        ("ref_model", typeof(string), "null", "reference model directory (null: a frozen copy of the starting model)"),
        ("device", typeof(string), "auto", "auto / cpu / cuda / cuda:N"),
        ("disable_dropout", typeof(bool), "true", "disable dropout in the model (and the reference model)"),
        ("dataset", typeof(string), "null", "training data: file (jsonl/json/parquet/csv/tsv) or dataset directory"),
        ("eval_dataset", typeof(string), "null", "evaluation data (null: the test split of dataset, if any)"),
        ("dataset_train_split", typeof(string), "null", "split of dataset used for training (null: train, else the only split)"),
        ("dataset_test_split", typeof(string), "test", "split of dataset used for evaluation"),
        ("prompt_column", typeof(string), "null", "prompt column (null: prompt, else conversations, else implicit)"),
        ("chosen_column", typeof(string), "chosen", "chosen (preferred) completion column"),
        ("rejected_column", typeof(string), "rejected", "rejected completion column"),
        ("system_column", typeof(string), "system", "optional system-text column"),
        ("max_length", typeof(int?), "1024", "max tokens of prompt + completion (null: no limit)"),
        ("max_prompt_length", typeof(int?), "512", "max prompt tokens (null: no limit)"),
        ("max_completion_length", typeof(int?), "null", "max completion tokens (null: no limit)"),
        ("truncation_mode", typeof(TruncationMode), "keep_end", "keep_end / keep_start"),
        ("pad_to_multiple_of", typeof(int?), "null", "pad sequence length to a multiple of N"),
        ("padding_free", typeof(bool), "false", "pack each batch's sequences into rows without padding (position-id resets, block-diagonal mask)"),
        ("prefix_sharing", typeof(bool), "true", "run each pair's prompt once for both completions (false: one row per completion, as TRL)"),
        ("group_by_length", typeof(bool), "false", "batch rows of similar length together"),
        ("algorithm", typeof(TrainingAlgorithm), "dpo", "dpo (preference pairs) or kto (unpaired prompt/completion/label data)"),
        ("beta", typeof(double), "0.1", "beta: deviation from the reference model (IPO: tau)"),
        ("loss_type", typeof(List<string>), "sigmoid", "loss type(s), comma-separated: sigmoid, ipo, hinge, robust, …"),
        ("loss_weights", typeof(List<double>), "null", "weights of the loss types, comma-separated"),
        ("label_smoothing", typeof(double), "0", "label smoothing in [0, 0.5] (cDPO, robust, exo_pair, aot)"),
        ("reference_free", typeof(bool), "false", "no reference model: reference log-probs are 0"),
        ("f_divergence_type", typeof(string), "reverse_kl", "reverse_kl / forward_kl / js_divergence / alpha_divergence"),
        ("f_alpha_divergence_coef", typeof(double), "1", "alpha of alpha_divergence"),
        ("discopop_tau", typeof(double), "0.05", "tau of the discopop loss"),
        ("rpo_alpha", typeof(double?), "null", "weight of the NLL term on chosen completions (RPO)"),
        ("simpo_gamma", typeof(double), "0.5", "target reward margin gamma of simpo"),
        ("cpo_alpha", typeof(double), "1", "weight of the chosen NLL of cpo and simpo (SimPO paper: 0)"),
        ("desirable_weight", typeof(double), "1", "KTO: weight of desirable examples' losses"),
        ("undesirable_weight", typeof(double), "1", "KTO: weight of undesirable examples' losses"),
        ("use_weighting", typeof(bool), "false", "WPO weighting of pair losses"),
        ("ld_alpha", typeof(double?), "null", "LD-DPO: weight in [0, 1] of the policy's log-probs beyond the pair's shared completion length (null: off)"),
        ("sync_ref_model", typeof(bool), "false", "TR-DPO: mix the policy into the reference model every ref_model_sync_steps steps"),
        ("ref_model_mixup_alpha", typeof(double), "0.6", "TR-DPO: policy share alpha in [0, 1] of the synced reference"),
        ("ref_model_sync_steps", typeof(int), "512", "TR-DPO: optimizer steps between reference syncs"),
        ("precompute_ref_log_probs", typeof(bool), "false", "compute reference log-probs once before training (cached)"),
        ("precompute_ref_batch_size", typeof(int?), "null", "batch size of the reference pre-computation"),
        ("learning_rate", typeof(double), "1E-06", "peak learning rate"),
        ("per_device_train_batch_size", typeof(int), "8", "examples (DPO: pairs) per micro-batch"),
        ("per_device_eval_batch_size", typeof(int), "8", "examples (DPO: pairs) per evaluation batch"),
        ("gradient_accumulation_steps", typeof(int), "1", "micro-batches per optimizer step"),
        ("num_train_epochs", typeof(double), "3", "epochs (ignored when max_steps > 0)"),
        ("max_steps", typeof(int), "-1", "optimizer steps (-1: from num_train_epochs)"),
        ("lr_scheduler_type", typeof(LrSchedulerType), "linear", "constant / constant_with_warmup / linear / cosine"),
        ("warmup_ratio", typeof(double), "0", "warm-up fraction of total steps (used when warmup_steps is 0)"),
        ("warmup_steps", typeof(int), "0", "warm-up steps (overrides warmup_ratio)"),
        ("weight_decay", typeof(double), "0", "AdamW weight decay (not on biases and norms)"),
        ("adam_beta1", typeof(double), "0.9", "AdamW beta1"),
        ("adam_beta2", typeof(double), "0.999", "AdamW beta2"),
        ("adam_epsilon", typeof(double), "1E-08", "AdamW epsilon"),
        ("max_grad_norm", typeof(double), "1", "gradient-norm clip (0: none)"),
        ("max_bad_steps", typeof(int), "3", "consecutive NaN/inf steps skipped (no weight change) before the run stops (0: stop at the first; not in TRL)"),
        ("seed", typeof(int), "42", "random seed"),
        ("use_peft", typeof(bool), "false", "train LoRA adapters on a frozen base model (PEFT files; the reference is the base with adapters off) (alias: --lora)"),
        ("adapter", typeof(string), "null", "PEFT LoRA adapter folder to continue training (implies use_peft)"),
        ("lora_r", typeof(int), "8", "LoRA rank r"),
        ("lora_alpha", typeof(double), "16", "LoRA alpha: the update is scaled by alpha / r"),
        ("lora_dropout", typeof(double), "0.05", "dropout on the LoRA input path"),
        ("lora_target_modules", typeof(List<string>), "", "LoRA target modules, comma-separated (e.g. q_proj,v_proj), or all-linear (empty: PEFT's targets for the architecture) (alias: --lora-target)"),
        ("gradient_checkpointing", typeof(bool?), "null", "recompute decoder layers in the backward instead of keeping their activations (null: on with LoRA)"),
        ("logits_chunk_size", typeof(int), "256", "positions per lm_head chunk for log-probs (0 = full logits)"),
        ("completion_only_logits", typeof(bool), "true", "compute logits only at positions predicting completion tokens"),
        ("torch_dtype", typeof(string), "float32", "dtype of frozen weights (the reference model; with LoRA, the base): float32, bfloat16 or float16"),
        ("output_dir", typeof(string), "trainer_output", "output directory: final model, checkpoints, metrics"),
        ("logging_steps", typeof(int), "10", "log metrics every N steps"),
        ("save_steps", typeof(int), "500", "save a checkpoint every N steps"),
        ("save_total_limit", typeof(int?), "null", "keep at most N checkpoints"),
        ("eval_strategy", typeof(EvalStrategy), "no", "no / steps / epoch"),
        ("eval_steps", typeof(int?), "null", "evaluate every N steps (null: logging_steps)"),
        ("report_to", typeof(List<ReportTarget>), "all", "metric sinks: jsonl, tensorboard, png, console, all, none"),
        ("resume_from_checkpoint", typeof(string), "null", "resume from this checkpoint directory"),
        ("resume", typeof(bool), "false", "resume from the newest checkpoint in output_dir"),
        ("overwrite_output_dir", typeof(bool), "false", "allow a fresh run into an output_dir holding an earlier run (its checkpoints are deleted)"),
    ];

    /// <summary>Every option of <c>dposharp sft</c> (TRL's <c>SFTConfig</c>): no preference options.</summary>
    private static readonly (string Name, Type Type, string Default, string Description)[] SftOptionList =
    [
        ("model", typeof(string), "null", "model directory to train (HF layout)"),
        ("device", typeof(string), "auto", "auto / cpu / cuda / cuda:N"),
        ("disable_dropout", typeof(bool), "true", "disable dropout in the model (and the reference model)"),
        ("dataset", typeof(string), "null", "training data: file (jsonl/json/parquet/csv/tsv) or dataset directory"),
        ("eval_dataset", typeof(string), "null", "evaluation data (null: the test split of dataset, if any)"),
        ("dataset_train_split", typeof(string), "null", "split of dataset used for training (null: train, else the only split)"),
        ("dataset_test_split", typeof(string), "test", "split of dataset used for evaluation"),
        ("dataset_text_field", typeof(string), "text", "text column of language-modeling rows (rows without prompt/completion)"),
        ("max_length", typeof(int?), "1024", "max tokens of prompt + completion, or of a text row (null: no limit)"),
        ("completion_only_loss", typeof(bool), "true", "loss on completion tokens only (false: on prompt tokens too)"),
        ("group_by_length", typeof(bool), "false", "batch rows of similar length together"),
        ("learning_rate", typeof(double), "2E-05", "peak learning rate"),
        ("per_device_train_batch_size", typeof(int), "8", "examples (DPO: pairs) per micro-batch"),
        ("per_device_eval_batch_size", typeof(int), "8", "examples (DPO: pairs) per evaluation batch"),
        ("gradient_accumulation_steps", typeof(int), "1", "micro-batches per optimizer step"),
        ("num_train_epochs", typeof(double), "3", "epochs (ignored when max_steps > 0)"),
        ("max_steps", typeof(int), "-1", "optimizer steps (-1: from num_train_epochs)"),
        ("lr_scheduler_type", typeof(LrSchedulerType), "linear", "constant / constant_with_warmup / linear / cosine"),
        ("warmup_ratio", typeof(double), "0", "warm-up fraction of total steps (used when warmup_steps is 0)"),
        ("warmup_steps", typeof(int), "0", "warm-up steps (overrides warmup_ratio)"),
        ("weight_decay", typeof(double), "0", "AdamW weight decay (not on biases and norms)"),
        ("adam_beta1", typeof(double), "0.9", "AdamW beta1"),
        ("adam_beta2", typeof(double), "0.999", "AdamW beta2"),
        ("adam_epsilon", typeof(double), "1E-08", "AdamW epsilon"),
        ("max_grad_norm", typeof(double), "1", "gradient-norm clip (0: none)"),
        ("max_bad_steps", typeof(int), "3", "consecutive NaN/inf steps skipped (no weight change) before the run stops (0: stop at the first; not in TRL)"),
        ("seed", typeof(int), "42", "random seed"),
        ("use_peft", typeof(bool), "false", "train LoRA adapters on a frozen base model (PEFT files; the reference is the base with adapters off) (alias: --lora)"),
        ("adapter", typeof(string), "null", "PEFT LoRA adapter folder to continue training (implies use_peft)"),
        ("lora_r", typeof(int), "8", "LoRA rank r"),
        ("lora_alpha", typeof(double), "16", "LoRA alpha: the update is scaled by alpha / r"),
        ("lora_dropout", typeof(double), "0.05", "dropout on the LoRA input path"),
        ("lora_target_modules", typeof(List<string>), "", "LoRA target modules, comma-separated (e.g. q_proj,v_proj), or all-linear (empty: PEFT's targets for the architecture) (alias: --lora-target)"),
        ("gradient_checkpointing", typeof(bool?), "null", "recompute decoder layers in the backward instead of keeping their activations (null: on with LoRA)"),
        ("logits_chunk_size", typeof(int), "256", "positions per lm_head chunk for log-probs (0 = full logits)"),
        ("completion_only_logits", typeof(bool), "true", "compute logits only at positions predicting completion tokens"),
        ("torch_dtype", typeof(string), "float32", "dtype of frozen weights (the reference model; with LoRA, the base): float32, bfloat16 or float16"),
        ("output_dir", typeof(string), "trainer_output", "output directory: final model, checkpoints, metrics"),
        ("logging_steps", typeof(int), "10", "log metrics every N steps"),
        ("save_steps", typeof(int), "500", "save a checkpoint every N steps"),
        ("save_total_limit", typeof(int?), "null", "keep at most N checkpoints"),
        ("eval_strategy", typeof(EvalStrategy), "no", "no / steps / epoch"),
        ("eval_steps", typeof(int?), "null", "evaluate every N steps (null: logging_steps)"),
        ("report_to", typeof(List<ReportTarget>), "all", "metric sinks: jsonl, tensorboard, png, console, all, none"),
        ("resume_from_checkpoint", typeof(string), "null", "resume from this checkpoint directory"),
        ("resume", typeof(bool), "false", "resume from the newest checkpoint in output_dir"),
        ("overwrite_output_dir", typeof(bool), "false", "allow a fresh run into an output_dir holding an earlier run (its checkpoints are deleted)"),
    ];

    [Fact]
    public void DpoOptionsListKeepsItsOrderNamesDefaultsAndHelp()
    {
        Assert.Equal(DpoOptionList, OptionBinder.Options<DpoOptions>().Select(o => (o.Name, o.Type, o.Default, o.Description)));
        Assert.All(OptionBinder.Options<DpoOptions>(), o => Assert.Equal("--" + o.Name.Replace('_', '-'), o.Flag));
        Assert.Equal(DpoOptionList.Select(o => o.Name), OptionBinder.ToDictionary(new DpoOptions()).Keys);
        Assert.Equal(
            DpoOptionList.Select(o => o.Name + ": "),
            OptionBinder.ToYaml(new DpoOptions()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l[..(l.IndexOf(':', StringComparison.Ordinal) + 2)]));
    }

    [Fact]
    public void SftOptionsListAreSftConfigsOptions()
    {
        Assert.Equal(SftOptionList, OptionBinder.Options<SftOptions>().Select(o => (o.Name, o.Type, o.Default, o.Description)));
        Assert.Equal(SftOptionList.Select(o => o.Name), OptionBinder.ToDictionary(new SftOptions()).Keys);
        Assert.Equal("2E-05", OptionBinder.Options<SftOptions>().Single(o => o.Name == "learning_rate").Default);
        var names = SftOptionList.Select(o => o.Name).ToList();
        Assert.All(["beta", "loss_type", "ref_model", "reference_free", "max_prompt_length", "precompute_ref_log_probs", "rpo_alpha", "chosen_column", "padding_free"], n => Assert.DoesNotContain(n, names));
    }

    [Fact]
    public void ReadmeTablesAreTheHelpOfTrainAndSft()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"));
        static string Table(IEnumerable<OptionInfo> infos) => string.Join("\n", infos.Select(o =>
            $"| `{o.Name}` | `{o.Flag}` | `{o.TypeName.Replace("|", "\\|", StringComparison.Ordinal)}` | `{o.Default}` | {o.Description} |")
            .Prepend("|---|---|---|---|---|").Prepend("| option (config key) | flag | type | default | meaning |"));
        Assert.Contains(Table(OptionBinder.Options<DpoOptions>()) + "\n\n", readme);
        Assert.Contains(Table(OptionBinder.Options<SftOptions>()) + "\n\n", readme);
        Assert.All(DpoSharp.Losses.PreferenceLosses.Names, n => Assert.Contains($"| `{n}` |", readme));
    }

    [Theory]
    [InlineData("train")]
    [InlineData("sft")]
    public void HelpListsEachOptionOnceWithOneDefault(string command)
    {
        var (rc, help, _) = DpoSharp.Tests.TestSupport.CliRunner.Run(command, "--help");
        Assert.Equal(0, rc);
        var infos = command == "train" ? OptionBinder.Options<DpoOptions>() : OptionBinder.Options<SftOptions>();

        // One entry per option (wrapped lines joined): the flag, its type, the help, its config name and one default.
        var options = System.Text.RegularExpressions.Regex.Replace(help[help.IndexOf("Options:", StringComparison.Ordinal)..], @"\s+", " ");
        var entries = System.Text.RegularExpressions.Regex.Split(options, @"(?<!alias:) (?=--[a-z]|-\?, )").Skip(1).ToList();
        foreach (var o in infos)
        {
            var entry = Assert.Single(entries, e => e.StartsWith(o.Flag + " ", StringComparison.Ordinal));
            Assert.Equal(1, System.Text.RegularExpressions.Regex.Count(entry, "default"));
            Assert.EndsWith($"(config: {o.Name}; default: {o.Default})", entry.TrimEnd());
        }

        Assert.DoesNotContain("[default:", help);
        Assert.Equal(command == "train", help.Contains("--padding-free", StringComparison.Ordinal)); // issue 12: padding_free works
        Assert.DoesNotContain("--learning_rate ", options);                 // aliases are accepted, not listed
        Assert.DoesNotContain("additional arguments", help);
        if (command == "sft")
        {
            Assert.All(["--beta", "--loss-type", "--ref-model", "--reference-free", "--max-prompt-length"], f => Assert.DoesNotContain(f + " ", help));
        }
    }

    [Fact]
    public void ConcernObjectsAreNotOptionsButTheirPropertiesAre()
    {
        var names = OptionBinder.Options<DpoOptions>().Select(o => o.Name).ToList();
        Assert.DoesNotContain("optimizer", names);
        Assert.DoesNotContain("data", names);
        Assert.DoesNotContain("objective", names);
        Assert.DoesNotContain("effective_report_to", names);
        var o = new DpoOptions();
        OptionBinder.Apply(o, "--learning-rate", "3e-5");
        OptionBinder.Apply(o, "max_length", "null");
        OptionBinder.Apply(o, "loss_type", "ipo");
        Assert.Equal((3e-5, (int?)null, "ipo"), (o.Optimizer.LearningRate, o.Data.MaxLength, o.Objective.LossType.Single()));
    }
}
