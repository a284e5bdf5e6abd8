global using TrainingOptions = DpoSharp.Training.DpoOptions;
