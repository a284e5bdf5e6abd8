using System.Reflection;
using Xunit.Sdk;

namespace DpoSharp.Tests.TestSupport;

/// <summary>Theory data: one row per supported <c>model_type</c> (gpt2, llama, mistral, qwen2, phi).</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class AllModelTypesAttribute : DataAttribute
{
    /// <summary>The model types, in the order the theories list them.</summary>
    public static readonly string[] Types = ["gpt2", "llama", "mistral", "qwen2", "phi"];

    /// <inheritdoc/>
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => Types.Select(t => new object[] { t });
}
