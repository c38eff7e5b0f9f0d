using Xtelemdb.Storage;

namespace Xtelemdb.Tests.Unit;

public sealed class SynchronousStandbysTests
{
    [TestCase("pg2", new[] { "pg2" }, true)]
    [TestCase("pg2", new[] { "pg_basebackup" }, false, Description = "a base backup streams too, and is no standby")]
    [TestCase("pg2", new string[0], false)]
    [TestCase("PG2", new[] { "pg2" }, true, Description = "compared case-insensitively")]
    [TestCase("\"Pg2\"", new[] { "pg2" }, true, Description = "double-quoted or not")]
    [TestCase("*", new[] { "anything" }, true)]
    [TestCase("*", new string[0], false)]
    [TestCase("pg2, pg3", new[] { "pg3" }, true, Description = "a list: the first of them connected")]
    [TestCase("FIRST 2 (pg2, pg3, pg4)", new[] { "pg3", "walreceiver" }, false, Description = "two of them needed")]
    [TestCase("FIRST 2 (pg2, pg3, pg4)", new[] { "pg4", "pg2" }, true)]
    [TestCase("ANY 1 (pg2, pg3)", new[] { "pg3" }, true)]
    [TestCase("any 2 (pg2,pg3)", new[] { "pg2" }, false)]
    [TestCase("2 (pg2, pg3)", new[] { "pg2", "pg3" }, true, Description = "FIRST is the default")]
    public void When_standbys_stream_Should_tell_whether_commits_can_go_on(string setting, string[] streaming, bool connected) =>
        Assert.That(SynchronousStandbys.Parse(setting).AreConnected(streaming), Is.EqualTo(connected), setting);
}
