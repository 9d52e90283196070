using KmsPlugin.Core.Errors;
using KmsPlugin.Core.RootKeys;
using KmsPlugin.TestSupport;

namespace KmsPlugin.Tests.Unit;

public sealed class KeyIdHistoryTests
{
    private const string A = "local-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string B = "local-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    private const string E = "local-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

    [Fact]
    public void A_first_primary_reports_its_own_key_id()
    {
        var history = KeyIdHistory.InMemory();
        Assert.Equal(A, history.Assign(A, []));
        Assert.Equal(A, history.Assign(A, []));
    }

    [Fact]
    public void Going_A_to_B_to_A_gives_the_second_A_a_new_key_id()
    {
        var history = KeyIdHistory.InMemory();
        var first = history.Assign(A, []);
        Assert.Equal(B, history.Assign(B, []));
        var second = history.Assign(A, []);
        Assert.NotEqual(first, second);
        Assert.Equal(A + ".e1", second);
        Assert.Equal(A, KeyIdEpoch.BaseOf(second));
        history.Assign(B, []);
        Assert.Equal(B + ".e1", history.Assign(B, []));
        Assert.Equal(A + ".e2", history.Assign(A, []));
    }

    [Fact]
    public void Peek_tells_the_next_key_id_without_recording_it()
    {
        var history = KeyIdHistory.InMemory();
        history.Assign(A, []);
        history.Assign(B, []);
        Assert.Equal(A + ".e1", history.Peek(A, []));
        Assert.Equal(A + ".e1", history.Peek(A, []));
        Assert.Equal(B, history.Peek(B, []));
        Assert.Equal(A + ".e1", history.Assign(A, []));
    }

    [Fact]
    public void Adding_or_removing_an_additional_wrap_changes_the_key_id()
    {
        var history = KeyIdHistory.InMemory();
        Assert.Equal(A, history.Assign(A, []));
        Assert.Equal(A + ".e1", history.Assign(A, [E]));
        Assert.Equal(A + ".e1", history.Assign(A, [E]));
        Assert.Equal(A + ".e2", history.Assign(A, []));
    }

    [Fact]
    public void The_history_survives_a_restart_through_the_state_file()
    {
        using var dir = new TempDirectory();
        var history = KeyIdHistory.Open(dir.Path);
        history.Assign(A, []);
        history.Assign(B, []);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.FilePath(KeyIdHistory.FileName)));

        var reopened = KeyIdHistory.Open(dir.Path);
        Assert.Equal(B, reopened.Assign(B, []));
        Assert.Equal(A + ".e1", reopened.Assign(A, []));
        Assert.False(File.Exists(dir.FilePath(KeyIdHistory.FileName + ".tmp")));
    }

    [Fact]
    public void A_corrupt_state_file_is_an_error_not_a_silent_reset()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.FilePath(KeyIdHistory.FileName), "{ not json");
        var e = Assert.Throws<KmsPluginException>(() => KeyIdHistory.Open(dir.Path));
        Assert.Contains("key_id history", e.Message, StringComparison.Ordinal);

        File.WriteAllText(dir.FilePath(KeyIdHistory.FileName), """{"version": 7, "entries": []}""");
        Assert.Throws<KmsPluginException>(() => KeyIdHistory.Open(dir.Path));
    }

    [Fact]
    public void A_state_file_that_cannot_be_written_fails_the_assignment_and_records_nothing()
    {
        using var dir = new TempDirectory();
        var history = KeyIdHistory.Open(dir.Path);
        history.Assign(A, []);
        Directory.CreateDirectory(dir.FilePath(KeyIdHistory.FileName + ".tmp")); // the temp file cannot be created
        Assert.Throws<KmsPluginException>(() => history.Assign(B, []));
        Directory.Delete(dir.FilePath(KeyIdHistory.FileName + ".tmp"));
        Assert.Equal(A, history.Assign(A, []));
    }

    [Theory]
    [InlineData("local-abc", "local-abc")]
    [InlineData("local-abc.e1", "local-abc")]
    [InlineData("local-abc.e42", "local-abc")]
    [InlineData("local-abc.e0", "local-abc.e0")]
    [InlineData("local-abc.e01", "local-abc.e01")]
    [InlineData("local-abc.e", "local-abc.e")]
    [InlineData("local-abc.ex", "local-abc.ex")]
    [InlineData("local-abc.e1234567890", "local-abc.e1234567890")]
    [InlineData(".e1", ".e1")]
    public void Epoch_suffixes_are_parsed_strictly(string keyId, string expectedBase) => Assert.Equal(expectedBase, KeyIdEpoch.BaseOf(keyId));
}
