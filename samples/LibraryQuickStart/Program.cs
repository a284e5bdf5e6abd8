using DpoSharp.Data;
using DpoSharp.Models;
using DpoSharp.Tokenization;
using DpoSharp.Training;

using var model = ModelLoader.Load("./phi-2");                       // Hugging Face directory
var tokenizer = HfTokenizer.Load("./phi-2");
var train = PreferenceDatasetLoader.Load("./truthy-dpo-v0.1");       // prompt / chosen / rejected
var options = new DpoOptions { Beta = 0.1, LearningRate = 1e-6, PerDeviceTrainBatchSize = 4, OutputDir = "./phi2-dpo" };
using var trainer = new DpoTrainer(model, refModel: null, options, train, tokenizer);
trainer.Logged += e => Console.WriteLine($"step {e.Step}: {string.Join(", ", e.Metrics.Select(m => $"{m.Key}={m.Value:G4}"))}");
trainer.Train();                                                     // checkpoints + final model (with tokenizer) in ./phi2-dpo
