using DpoSharp.Native;

namespace DpoSharp.Tests.Native;

public class LibStdCxxPatchTests
{
    private static string? OriginalLibrary()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        return File.Exists(path) ? path : null;
    }

    private static string SystemLibStdCxx() =>
        LibStdCxxVersionPatcher.FindSystemLibStdCxx() ?? throw new InvalidOperationException("no libstdc++.so.6 found");

    [Fact]
    public void TheLibraryInTheOutputFolderNeedsNoVersionTheSystemLacks()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var lib = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(lib), lib);
        var available = LibStdCxxVersionPatcher.ReadDefinedVersions(SystemLibStdCxx());
        Assert.Contains("GLIBCXX_3.4.9", available);
        Assert.Empty(LibStdCxxVersionPatcher.MissingVersions(lib, available));
    }

    [Fact]
    public void PatchingTheOriginalRemovesExactlyTheMissingNeedAndIsIdempotent()
    {
        var original = OriginalLibrary();
        Assert.True(original is not null, "TorchSharp 0.107.0 package not found in the NuGet cache");
        var dir = Directory.CreateTempSubdirectory("dposharp-elf-");
        try
        {
            var copy = Path.Combine(dir.FullName, "libLibTorchSharp.so");
            File.Copy(original!, copy);

            // Pretend the system libstdc++ is GCC 12's (Debian 12): everything up to GLIBCXX_3.4.30.
            var gcc12 = Gcc12Versions();
            Assert.Equal(["GLIBCXX_3.4.32"], LibStdCxxVersionPatcher.MissingVersions(copy, gcc12));

            var before = File.ReadAllBytes(copy);
            Assert.Equal(PatchOutcome.Patched, LibStdCxxVersionPatcher.PatchFile(copy, gcc12));
            var after = File.ReadAllBytes(copy);
            Assert.Equal(before.Length, after.Length);
            Assert.Empty(LibStdCxxVersionPatcher.MissingVersions(copy, gcc12));

            // Only a handful of bytes change: one vna_next, one vn_cnt, one versym entry, one st_info.
            int changed = before.Zip(after).Count(p => p.First != p.Second);
            Assert.InRange(changed, 3, 8);

            // Running again writes nothing.
            var stamp = File.GetLastWriteTimeUtc(copy);
            Assert.Equal(PatchOutcome.AlreadyPatched, LibStdCxxVersionPatcher.PatchFile(copy, gcc12));
            Assert.Equal(after, File.ReadAllBytes(copy));
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(copy));

            // With a libstdc++ that has the version (GCC 13+), the original needs no patch.
            var gcc13 = new HashSet<string>(gcc12) { "GLIBCXX_3.4.31", "GLIBCXX_3.4.32" };
            File.Copy(original!, copy, overwrite: true);
            Assert.Equal(PatchOutcome.NotNeeded, LibStdCxxVersionPatcher.PatchFile(copy, gcc13));
            Assert.Equal(before, File.ReadAllBytes(copy));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void RefusesWhenAMissingVersionBelongsToASymbolThatIsReallyCalled()
    {
        var original = OriginalLibrary();
        Assert.True(original is not null, "TorchSharp 0.107.0 package not found in the NuGet cache");
        var dir = Directory.CreateTempSubdirectory("dposharp-elf-");
        try
        {
            var copy = Path.Combine(dir.FullName, "libLibTorchSharp.so");
            File.Copy(original!, copy);
            var old = Gcc12Versions();
            old.Remove("GLIBCXX_3.4.30"); // a libstdc++ too old for real calls the library makes
            var bytes = File.ReadAllBytes(copy);
            var e = Assert.Throws<InvalidDataException>(() => LibStdCxxVersionPatcher.PatchFile(copy, old));
            Assert.Contains("GLIBCXX_3.4.30", e.Message);
            Assert.Equal(bytes, File.ReadAllBytes(copy)); // untouched
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void RejectsFilesThatAreNotElf()
    {
        var f = Path.GetTempFileName();
        try
        {
            File.WriteAllText(f, "not a library");
            var e = Assert.Throws<InvalidDataException>(() => LibStdCxxVersionPatcher.PatchFile(f, Gcc12Versions()));
            Assert.Contains("not an ELF file", e.Message);
        }
        finally
        {
            File.Delete(f);
        }
    }

    private static HashSet<string> Gcc12Versions()
    {
        var set = new HashSet<string> { "CXXABI_1.3", "GLIBCXX_3.4" };
        for (int i = 1; i <= 13; i++)
        {
            set.Add($"CXXABI_1.3.{i}");
        }

        for (int i = 1; i <= 30; i++)
        {
            set.Add($"GLIBCXX_3.4.{i}");
        }

        return set;
    }
}

public class LibStdCxxPatchLoadTests
{
    [Fact]
    public void PatchDirectoryMakesAnUnloadableCopyLoadableOnThisSystem()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var original = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(original), original);

        // libtorch.so & co. are already loaded by the test host (sonames match the copy's DT_NEEDED entries).
        TorchSharp.torch.zeros(1).Dispose();
        var libstdcxx = LibStdCxxVersionPatcher.FindSystemLibStdCxx()!;
        var systemLacks = LibStdCxxVersionPatcher.MissingVersions(original, LibStdCxxVersionPatcher.ReadDefinedVersions(libstdcxx)).Count > 0;

        using var dir = new TempDir();
        var native = Path.Combine(dir.Path, "runtimes", "linux-x64", "native");
        Directory.CreateDirectory(native);
        var copy = Path.Combine(native, "libLibTorchSharp.so");
        File.Copy(original, copy);

        if (systemLacks)
        {
            // Unpatched, the dynamic loader refuses it with the version error.
            var refused = Assert.ThrowsAny<Exception>(() => System.Runtime.InteropServices.NativeLibrary.Load(copy));
            Assert.Contains("GLIBCXX_3.4.32", refused.Message);
        }

        var log = LibStdCxxVersionPatcher.PatchDirectory(dir.Path);
        Assert.Single(log);
        Assert.Contains(systemLacks ? "Patched" : "NotNeeded", log[0]);
        var handle = System.Runtime.InteropServices.NativeLibrary.Load(copy);
        Assert.NotEqual(IntPtr.Zero, handle);
        Assert.NotEqual(IntPtr.Zero, System.Runtime.InteropServices.NativeLibrary.GetExport(handle, "THSTorch_get_num_threads"));
    }
}
