using System.Reflection;
using System.Text.RegularExpressions;

namespace DpoSharp.Tests.Modules;

/// <summary>The building blocks in <c>src/DpoSharp/Modules/</c> must not depend on the architectures in <c>Models/</c>.</summary>
public class ModuleDependencyTests
{
    // "DpoSharp.Models" in any form (using, global using, alias, fully qualified name), or a "Models.X" name that
    // resolves to DpoSharp.Models from inside namespace DpoSharp.Modules (e.g. a cref).
    private static readonly Regex ModelsReference = new(@"\bDpoSharp\s*\.\s*Models\b|(?<![\w.])Models\s*\.\s*[A-Za-z_]", RegexOptions.CultureInvariant);

    [Fact]
    public void NoModuleSourceReferencesTheModelsNamespace()
    {
        var dir = Path.Combine(TestPaths.RepoRoot, "src", "DpoSharp", "Modules");
        var files = Directory.GetFiles(dir, "*.cs", SearchOption.AllDirectories);
        Assert.NotEmpty(files);
        var offending = files
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: f, Line: i + 1, Text: line)))
            .Where(l => ModelsReference.IsMatch(l.Text))
            .Select(l => $"{Path.GetRelativePath(TestPaths.RepoRoot, l.File)}:{l.Line}: {l.Text.Trim()}")
            .ToList();
        Assert.True(offending.Count == 0, "src/DpoSharp/Modules must not reference DpoSharp.Models:\n" + string.Join("\n", offending));
    }

    [Fact]
    public void NoModuleTypeSignatureUsesAModelsType()
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var moduleTypes = typeof(DpoSharp.Modules.KvCache).Assembly.GetTypes()
            .Where(t => t.Namespace == "DpoSharp.Modules")
            .ToList();
        Assert.NotEmpty(moduleTypes);
        var offending = new List<string>();
        foreach (var t in moduleTypes)
        {
            var used = t.GetFields(all).Select(f => f.FieldType)
                .Concat(t.GetProperties(all).Select(p => p.PropertyType))
                .Concat(t.GetConstructors(all).SelectMany(c => c.GetParameters()).Select(p => p.ParameterType))
                .Concat(t.GetMethods(all).SelectMany(m => m.GetParameters().Select(p => p.ParameterType).Append(m.ReturnType)))
                .Concat(t.GetInterfaces())
                .Append(t.BaseType);
            offending.AddRange(used.SelectMany(Flatten).Where(u => u.Namespace?.StartsWith("DpoSharp.Models", StringComparison.Ordinal) == true).Select(u => $"{t.FullName} uses {u.FullName}"));
        }

        Assert.True(offending.Count == 0, string.Join("\n", offending.Distinct()));
    }

    [Fact]
    public void PatternCatchesTheWaysModulesCouldReferenceModels()
    {
        Assert.Matches(ModelsReference, "using DpoSharp.Models;");
        Assert.Matches(ModelsReference, "global using DpoSharp.Models.Llama;");
        Assert.Matches(ModelsReference, "using Cfg = DpoSharp.Models.ModelConfig;");
        Assert.Matches(ModelsReference, "public Foo(global::DpoSharp.Models.ModelConfig c)");
        Assert.Matches(ModelsReference, "/// <see cref=\"Models.CausalLMBase.InitializeWeights\"/>");
        Assert.DoesNotMatch(ModelsReference, "/// the architectures in Models/ translate their config");
        Assert.DoesNotMatch(ModelsReference, "using DpoSharp.Modules;");
        Assert.DoesNotMatch(ModelsReference, "var x = config.Models.Count;");
    }

    private static IEnumerable<Type> Flatten(Type? t)
    {
        if (t is null)
        {
            yield break;
        }

        if (t.HasElementType)
        {
            foreach (var e in Flatten(t.GetElementType()))
            {
                yield return e;
            }

            yield break;
        }

        yield return t;
        if (t.IsGenericType)
        {
            foreach (var a in t.GetGenericArguments().SelectMany(Flatten))
            {
                yield return a;
            }
        }
    }
}
