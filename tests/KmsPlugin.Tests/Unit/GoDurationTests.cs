using KmsPlugin.Configuration;

namespace KmsPlugin.Tests.Unit;

public sealed class GoDurationTests
{
    [Theory]
    [InlineData("168h", 168 * 3600_000L)]
    [InlineData("1m30s", 90_000L)]
    [InlineData("500ms", 500L)]
    [InlineData("1.5h", 5400_000L)]
    [InlineData("0", 0L)]
    [InlineData("3s", 3000L)]
    public void Go_style_durations_parse(string text, long milliseconds)
    {
        Assert.True(GoDuration.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("10d")]
    [InlineData("h")]
    [InlineData("-5s")]
    [InlineData("1..5s")]
    [InlineData("99999999999999999999h")]
    public void Anything_else_is_rejected(string text) => Assert.False(GoDuration.TryParse(text, out _));
}
