using DpoSharp.Data;
using TorchSharp;

namespace DpoSharp.Tests.Data;

public class CollatorTests
{
    private static readonly TokenizedPair[] Pairs =
    [
        new([7, 8], [9], [10, 11, 12]),
        new([20], [21, 22], [23]),
    ];

    private static long[,] Read(torch.Tensor t)
    {
        Assert.Equal(torch.ScalarType.Int64, t.dtype);
        var rows = (int)t.shape[0];
        var cols = (int)t.shape[1];
        var data = t.data<long>().ToArray();
        var result = new long[rows, cols];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < cols; j++)
            {
                result[i, j] = data[(i * cols) + j];
            }
        }

        return result;
    }

    [Fact]
    public void ChosenRowsThenRejectedRowsRightPadded()
    {
        using var batch = new PreferenceCollator(padTokenId: 0).Collate(Pairs);
        Assert.Equal(new long[] { 4, 5 }, batch.InputIds.shape);
        Assert.Equal(new long[,]
        {
            { 7, 8, 9, 0, 0 },
            { 20, 21, 22, 0, 0 },
            { 7, 8, 10, 11, 12 },
            { 20, 23, 0, 0, 0 },
        }, Read(batch.InputIds));
        Assert.Equal(new long[,]
        {
            { 1, 1, 1, 0, 0 },
            { 1, 1, 1, 0, 0 },
            { 1, 1, 1, 1, 1 },
            { 1, 1, 0, 0, 0 },
        }, Read(batch.AttentionMask));
        Assert.Equal(new long[,]
        {
            { 0, 0, 1, 0, 0 },
            { 0, 1, 1, 0, 0 },
            { 0, 0, 1, 1, 1 },
            { 0, 1, 0, 0, 0 },
        }, Read(batch.CompletionMask));
        Assert.Equal(new long[,]
        {
            { 0, 1, 2, 0, 0 },
            { 0, 1, 2, 0, 0 },
            { 0, 1, 2, 3, 4 },
            { 0, 1, 0, 0, 0 },
        }, Read(batch.PositionIds));
        Assert.Equal(13, batch.TokenCount);
        Assert.Equal(2, batch.PairCount);
        Assert.Equal([0, 1], batch.PairIndices);
    }

    [Fact]
    public void PadToMultipleOfAndPadIdAndIndices()
    {
        using var batch = new PreferenceCollator(padTokenId: 99, padToMultipleOf: 4).Collate(Pairs, [1]);
        Assert.Equal(new long[] { 2, 4 }, batch.InputIds.shape);
        Assert.Equal(new long[,] { { 20, 21, 22, 99 }, { 20, 23, 99, 99 } }, Read(batch.InputIds));
        Assert.Equal(new long[,] { { 0, 1, 1, 0 }, { 0, 1, 0, 0 } }, Read(batch.CompletionMask));
        Assert.Equal([1], batch.PairIndices);

        using var eight = new PreferenceCollator(0, padToMultipleOf: 8).Collate(Pairs);
        Assert.Equal(8, eight.InputIds.shape[1]);
    }

    [Fact]
    public void InvalidSettings()
    {
        Assert.Throws<DpoSharpException>(() => new PreferenceCollator(-1));
        Assert.Throws<DpoSharpException>(() => new PreferenceCollator(0, padToMultipleOf: 0));
    }
}
