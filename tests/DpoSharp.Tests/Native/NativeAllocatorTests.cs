using DpoSharp.Native;

namespace DpoSharp.Tests.Native;

public class NativeAllocatorTests
{
    [Fact]
    public void TheMmapThresholdIsSetOnGlibcAndLeftAloneWhenTheUserSetIt()
    {
        bool glibc = OperatingSystem.IsLinux() && File.Exists("/lib/x86_64-linux-gnu/libc.so.6");
        bool userSet = Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null;
        Assert.Equal(glibc && !userSet, NativeAllocator.ReleaseLargeBlocks());
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeAllocator.ReleaseLargeBlocks(100));

        // With glibc's defaults, freeing a 30 MB mapped block raises the threshold to 30 MB, and an 8 MB block then
        // comes from the heap and stays resident after it is freed; with the setting it is unmapped when freed.
        if (glibc && !userSet)
        {
            using (TorchSharp.torch.NewDisposeScope())
            {
                TorchSharp.torch.ones(30 << 18).Dispose();                      // 30 MB
                var before = DpoSharp.Diagnostics.ProcMemory.RssBytes()!.Value;
                var block = TorchSharp.torch.ones(8 << 18);                     // 8 MB, pages touched
                Assert.True(DpoSharp.Diagnostics.ProcMemory.RssBytes()!.Value - before > 7_000_000);
                block.Dispose();
                Assert.True(DpoSharp.Diagnostics.ProcMemory.RssBytes()!.Value - before < 2_000_000);
            }
        }
    }
}
