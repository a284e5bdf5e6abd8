using DpoSharp.Data;
using DpoSharp.Tokenization;

var data = PreferenceDatasetLoader.Load("./truthy-dpo-v0.1", new DatasetOptions { Split = "train" });
var tokenized = new PairTokenizer(HfTokenizer.Load("./phi-2"), new TokenizationOptions { MaxLength = 512, MaxPromptLength = 256 }).Tokenize(data);
var sampler = LengthGroupedSampler.For(tokenized.Pairs, batchSize: 4, seed: 42);   // or RandomBatchSampler
var collator = new PreferenceCollator(padTokenId: 50256, padToMultipleOf: 8);
foreach (var (position, batch) in sampler.Iterate(new SamplerPosition(0, 0), epochs: 1))
{
    using var b = collator.Collate(tokenized.Pairs, batch);   // (2P, T): chosen rows, then rejected rows
    Console.WriteLine($"batch {position.Batch}: input_ids {string.Join(" x ", b.InputIds.shape)}");
}
