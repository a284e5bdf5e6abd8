using System.Buffers.Binary;
using System.Text;
using DpoSharp.Training.Metrics;
using static TorchSharp.torch;

namespace DpoSharp.Tests.Training.Metrics;

public class MetricSinkTests
{
    public MetricSinkTests() => DpoSharp.Native.TorchSharpRuntime.EnsureLoadable();

    private static Dictionary<string, double> Step(int i) => SampleMetrics.Step(i);

    [Fact]
    public void JsonlWritesOneObjectPerStepAndTruncatesOnResume()
    {
        using var dir = TestPaths.CreateTempDir();
        var path = Path.Combine(dir.Path, "sub", JsonlMetricSink.FileName);
        using (var sink = new JsonlMetricSink(path))
        {
            for (int i = 1; i <= 4; i++)
            {
                sink.Log(i * 10, Step(i));
            }

            sink.Log(40, new Dictionary<string, double> { ["eval_loss"] = double.NaN });
        }

        var lines = File.ReadAllLines(path);
        Assert.Equal(5, lines.Length);
        Assert.StartsWith("{\"step\":10,\"loss\":", lines[0]);
        Assert.Contains("\"rewards/margins\":", lines[0]);
        Assert.Equal("{\"step\":40,\"eval_loss\":null}", lines[4]);
        var records = JsonlMetricSink.Read(path);
        Assert.Equal(0.69 - 0.1, records[1].Values["loss"], 12);
        Assert.True(double.IsNaN(records[4].Values["eval_loss"]));

        // Resume from step 20: later lines go, new ones follow.
        using (var resumed = new JsonlMetricSink(path, append: true, keepUpToStep: 20))
        {
            resumed.Log(30, Step(3));
        }

        Assert.Equal([10L, 20, 30], JsonlMetricSink.Read(path).Select(r => r.Step));
        File.AppendAllText(path, "not json\n");
        Assert.Contains("line 4", Assert.Throws<DpoSharpException>(() => JsonlMetricSink.Read(path)).Message);
    }

    [Fact]
    public void TensorBoardEventFileHoldsTheScalars()
    {
        using var dir = TestPaths.CreateTempDir();
        var logDir = Path.Combine(dir.Path, "runs");
        using (var sink = new TensorBoardMetricSink(logDir))
        {
            sink.Log(10, new Dictionary<string, double> { ["loss"] = 0.5, ["rewards/margins"] = 0.25 });
            sink.Log(20, new Dictionary<string, double> { ["loss"] = 0.375, ["eval_loss"] = 0.4375 });
        }

        var file = Assert.Single(Directory.GetFiles(logDir, "events.out.tfevents.*"));
        var events = ReadTfRecords(File.ReadAllBytes(file)).Select(ParseEvent).ToList();
        Assert.Contains(events, e => e.FileVersion == "brain.Event:2");
        var scalars = events.Where(e => e.Tag is not null).ToList();
        Assert.Contains(scalars, e => e.Tag == "train/loss" && e.Step == 10 && e.Value == 0.5f);
        Assert.Contains(scalars, e => e.Tag == "train/rewards/margins" && e.Step == 10 && e.Value == 0.25f);
        Assert.Contains(scalars, e => e.Tag == "train/loss" && e.Step == 20 && e.Value == 0.375f);
        Assert.Contains(scalars, e => e.Tag == "eval/loss" && e.Step == 20 && e.Value == 0.4375f);
        Assert.All(scalars, e => Assert.InRange(e.WallTime, 1.6e9, 1e10));   // seconds since 1970
    }

    // ---- independent TFRecord + protobuf reading

    private static IEnumerable<byte[]> ReadTfRecords(byte[] file)
    {
        int pos = 0;
        while (pos < file.Length)
        {
            ulong len = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(pos));
            uint lenCrc = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + 8));
            Assert.Equal(MaskedCrc(file.AsSpan(pos, 8)), lenCrc);
            var data = file.AsSpan(pos + 12, (int)len).ToArray();
            uint dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + 12 + (int)len));
            Assert.Equal(MaskedCrc(data), dataCrc);
            pos += 12 + (int)len + 4;
            yield return data;
        }
    }

    private static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;   // CRC-32C (Castagnoli), reflected
            }
        }

        crc = ~crc;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    private sealed record TbEvent(double WallTime, long Step, string? FileVersion, string? Tag, float Value);

    private static TbEvent ParseEvent(byte[] data)
    {
        double wall = 0;
        long step = 0;
        string? version = null, tag = null;
        float value = float.NaN;
        foreach (var (field, wire, payload, number) in Fields(data))
        {
            switch (field)
            {
                case 1 when wire == 1: wall = BitConverter.Int64BitsToDouble((long)number); break;
                case 2 when wire == 0: step = (long)number; break;
                case 3 when wire == 2: version = Encoding.UTF8.GetString(payload); break;
                case 5 when wire == 2:
                    foreach (var (sf, sw, sv, _) in Fields(payload))
                    {
                        if (sf == 1 && sw == 2)
                        {
                            foreach (var (vf, vw, vp, vn) in Fields(sv))
                            {
                                if (vf == 1 && vw == 2)
                                {
                                    tag = Encoding.UTF8.GetString(vp);
                                }
                                else if (vf == 2 && vw == 5)
                                {
                                    value = BitConverter.Int32BitsToSingle((int)vn);
                                }
                            }
                        }
                    }

                    break;
            }
        }

        return new TbEvent(wall, step, version, tag, value);
    }

    private static List<(int Field, int Wire, byte[] Payload, ulong Number)> Fields(byte[] data)
    {
        var list = new List<(int, int, byte[], ulong)>();
        int pos = 0;
        ulong Varint()
        {
            ulong v = 0;
            int shift = 0;
            while (true)
            {
                byte b = data[pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return v;
                }

                shift += 7;
            }
        }

        while (pos < data.Length)
        {
            ulong key = Varint();
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: list.Add((field, wire, [], Varint())); break;
                case 1: list.Add((field, wire, [], BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(pos)))); pos += 8; break;
                case 5: list.Add((field, wire, [], BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(pos)))); pos += 4; break;
                case 2:
                    int len = (int)Varint();
                    list.Add((field, wire, data.AsSpan(pos, len).ToArray(), 0));
                    pos += len;
                    break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }

        return list;
    }
}
