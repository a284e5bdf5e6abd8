using DpoSharp.Models;
using DpoSharp.Models.Lora;

namespace DpoSharp.Training;

/// <summary>
/// Makes a loaded model what a run's options say it trains: LoRA adapters (fresh, or a PEFT adapter folder) on a
/// frozen base for <see cref="TrainingOptions.TrainsAdapters"/>, and the memory levers
/// (<see cref="MemoryOptions.ApplyTo"/>). Every trainer calls it once, before its objective and optimizer see the
/// model's parameters, as TRL's trainers wrap a model given a <c>peft_config</c>.
/// </summary>
public static class TrainableModel
{
    /// <summary>
    /// Applies <paramref name="options"/> to <paramref name="model"/> (in place): loads <see cref="TrainingOptions.Adapter"/>
    /// or, with <see cref="TrainingOptions.UsePeft"/>, injects fresh adapters (seeded by <see cref="TrainingOptions.Seed"/>)
    /// unless the model already has adapters; then sets gradient checkpointing (on by default with adapters) and the
    /// log-prob levers.
    /// </summary>
    /// <exception cref="DpoSharpException">An adapter folder that does not fit the model, targets that match no layer,
    /// or an <see cref="TrainingOptions.Adapter"/> for a model that already has adapters.</exception>
    public static void Prepare(ICausalLM model, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Adapter is { } adapter)
        {
            if (model.HasAdapters())
            {
                throw new DpoSharpException($"adapter {adapter}: the model already has LoRA adapters; give either a plain base model with --adapter, or the model with its adapters and no --adapter.");
            }

            PeftAdapter.Load(model, adapter);
        }
        else if (options.UsePeft && !model.HasAdapters())
        {
            var lora = options.Lora.Clone();
            lora.BaseModelNameOrPath ??= options.Model ?? model.SourceDirectory;
            model.Inject(lora, options.Seed);
        }

        options.Memory.ApplyTo(model);
    }
}
