using DpoSharp.IO;
using DpoSharp.Models.Gpt2;
using DpoSharp.Models.Llama;
using DpoSharp.Models.Phi;
using TorchSharp;
using static TorchSharp.torch;

namespace DpoSharp.Models;

/// <summary>Builds, loads and copies causal LMs.</summary>
public static class ModelLoader
{
    /// <summary>
    /// Builds the architecture for <paramref name="config"/> with <b>uninitialised</b> parameters (fill them with
    /// <see cref="CausalLMBase.InitializeWeights"/> or <see cref="CausalLMBase.LoadWeights"/>). Works on the meta device.
    /// </summary>
    public static CausalLMBase Build(ModelConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32) =>
        config.ModelType switch
        {
            "gpt2" => new Gpt2LMHeadModel(config, device ?? CPU, dtype),
            "llama" or "mistral" or "qwen2" => new LlamaForCausalLM(config, device ?? CPU, dtype),
            "phi" => new PhiForCausalLM(config, device ?? CPU, dtype),
            _ => throw new DpoSharpException($"model_type '{config.ModelType}' is not supported. Supported: {string.Join(", ", ModelConfig.SupportedModelTypes)}."),
        };

    /// <summary>A randomly initialised model (weights ~ N(0, 0.02), biases 0, norms 1), deterministic per <paramref name="seed"/>.</summary>
    public static ICausalLM Create(ModelConfig config, Device? device = null, long seed = 0, ScalarType dtype = ScalarType.Float32)
    {
        var model = Build(config, device, dtype);
        model.InitializeWeights(seed);
        model.eval();
        return model;
    }

    /// <summary>
    /// Loads a Hugging Face checkpoint directory (<c>config.json</c> + <c>model.safetensors</c> or sharded
    /// safetensors with <c>model.safetensors.index.json</c>) onto <paramref name="device"/> in <paramref name="dtype"/>
    /// (default fp32; stored F16/BF16 weights are converted). The model is returned in eval mode, with
    /// <see cref="ICausalLM.SourceDirectory"/> set to the directory's full path (the trainers copy its tokenizer files
    /// next to the models they save).
    /// </summary>
    /// <exception cref="DpoSharpException">Missing/malformed config or weights, or weights that do not match the config.</exception>
    public static ICausalLM Load(string directory, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        if (!Directory.Exists(directory))
        {
            throw new DpoSharpException($"{directory}: model directory not found.");
        }

        var config = ModelConfig.Load(directory);
        using var checkpoint = SafeTensorsCheckpoint.Open(directory);
        var model = Build(config, device, dtype);
        try
        {
            model.LoadWeights(checkpoint);
        }
        catch
        {
            model.Dispose();
            throw;
        }

        model.eval();
        model.SourceDirectory = Path.GetFullPath(directory);
        return model;
    }

    /// <summary>A deep copy of <paramref name="model"/> (same config, weights copied, same memory settings) on
    /// <paramref name="device"/> (default: the model's device) in <paramref name="dtype"/> (default: the model's);
    /// e.g. the frozen reference model of DPO.</summary>
    public static ICausalLM Copy(ICausalLM model, Device? device = null, ScalarType? dtype = null)
    {
        var src = model as CausalLMBase ?? throw new ArgumentException("Copy supports models built by ModelLoader", nameof(model));
        var copy = Build(model.Config, device ?? model.Device, dtype ?? src.DType);
        copy.CopyMemorySettings(src);
        copy.SourceDirectory = src.SourceDirectory;
        using (no_grad())
        {
            var from = src.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
            foreach (var (name, p) in copy.named_parameters())
            {
                p.copy_(from[name]);
            }
        }

        if (src.training)
        {
            copy.train();
        }
        else
        {
            copy.eval();
        }

        return copy;
    }

    /// <summary>Number of parameters (tied weights counted once).</summary>
    public static long CountParameters(ICausalLM model) => model.Module.parameters().Sum(p => p.numel());
}
