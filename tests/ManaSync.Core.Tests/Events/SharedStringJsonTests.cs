using System.Text;
using System.Text.Json;
using ManaSync.Events;
using Xunit;

namespace ManaSync.Core.Tests.Events;

/// <summary>Ids read from events are shared between events, and read exactly as without sharing.</summary>
public sealed class SharedStringJsonTests
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    private static ChangeRecorded Read(string userId, string clientId) => JsonSerializer.Deserialize<ChangeRecorded>(Template(userId, clientId), Options)!;

    private static string Template(string userId, string clientId) =>
        $$"""
        {"eventId":"{{Guid.NewGuid()}}","schemaVersion":1,"userId":{{userId}},"appId":"todo","table":"tasks","recordId":"r1","op":0,
         "clientId":{{clientId}},"receivedAt":"2026-12-03T10:00:00Z","futureLimit":"2026-12-03T10:05:00Z","commitTx":1,"commitIndex":0,"batchIndex":0}
        """;

    [Fact]
    public void Two_events_of_one_user_share_the_users_id_and_the_clients()
    {
        var first = Read("\"user-shared\"", "\"device-1\"");
        var second = Read("\"user-shared\"", "\"device-1\"");

        Assert.Equal("user-shared", second.UserId);
        Assert.Same(first.UserId, second.UserId);
        Assert.Same(first.ClientId, second.ClientId);
        Assert.Same(first.Table, second.Table);
    }

    [Fact]
    public void Escaped_long_and_null_values_read_as_they_are()
    {
        Assert.Equal("über \"quoted\"", Read("\"\\u00fcber \\\"quoted\\\"\"", "null").UserId);
        Assert.Equal("ü", Read("\"ü\"", "null").UserId);
        var longId = new string('x', 500);
        Assert.Equal(longId, Read($"\"{longId}\"", "null").UserId);
        Assert.Null(Read("\"u\"", "null").ClientId);
    }

    [Fact]
    public void Invalid_utf8_is_refused_as_before()
    {
        var json = Encoding.UTF8.GetBytes(Template("\"zbad\"", "null"));
        json[Encoding.UTF8.GetString(json).IndexOf("zbad", StringComparison.Ordinal)] = 0xC3; // a lead byte followed by an ASCII letter
        var refusal = Assert.ThrowsAny<Exception>(() => JsonSerializer.Deserialize<ChangeRecorded>(json, Options));
        Assert.Contains("UTF-8", refusal.ToString());
    }
}
