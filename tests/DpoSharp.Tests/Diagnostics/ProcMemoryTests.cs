using DpoSharp.Diagnostics;

namespace DpoSharp.Tests.Diagnostics;

public class ProcMemoryTests
{
    [Fact]
    public void KilobyteFieldsAreReadWhateverTheirPadding()
    {
        // The kernel pads values to 8 digits after a tab: 8-digit values (≥ 10 GB) have no space before them.
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "status");
        File.WriteAllLines(path, ["Name:\tdposharp", "VmHWM:\t16554308 kB", "VmRSS:\t  843212 kB", "MemAvailable:   23012345 kB"]);
        Assert.Equal(16554308L * 1024, ProcMemory.ReadKb(path, "VmHWM"));
        Assert.Equal(843212L * 1024, ProcMemory.ReadKb(path, "VmRSS"));
        Assert.Equal(23012345L * 1024, ProcMemory.ReadKb(path, "MemAvailable"));
        Assert.Null(ProcMemory.ReadKb(path, "VmPeak"));
        Assert.Null(ProcMemory.ReadKb(Path.Combine(dir.Path, "missing"), "VmHWM"));
        Assert.True(ProcMemory.PeakRssBytes() > 0);
    }
}
