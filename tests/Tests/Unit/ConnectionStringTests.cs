using Npgsql;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Tests.Unit;

public sealed class ConnectionStringTests
{
    static SslMode SslModeOf(string connection) =>
        new NpgsqlConnectionStringBuilder(InventoryDatabase.ConnectionString(new DatabaseSettings(connection))).SslMode;

    [TestCase("Host=127.0.0.1;Database=xtelem")]
    [TestCase("Host=localhost;Port=5433;Database=xtelem")]
    [TestCase("Host=::1;Database=xtelem")]
    [TestCase("Host=[::1]:5432;Database=xtelem")]
    [TestCase("Host=127.0.0.1:5432,localhost:5433;Database=xtelem")]
    public void When_the_server_is_on_this_machine_and_no_SSL_Mode_is_named_Should_not_use_TLS(string connection) =>
        Assert.That(SslModeOf(connection), Is.EqualTo(SslMode.Disable));

    [TestCase("Host=db.example;Database=xtelem", SslMode.Prefer)]
    [TestCase("Host=127.0.0.1,db.example;Database=xtelem", SslMode.Prefer)]
    [TestCase("Host=127.0.0.1;Database=xtelem;SSL Mode=Require", SslMode.Require)]
    [TestCase("Host=localhost;Database=xtelem;sslmode=prefer", SslMode.Prefer)]
    public void When_the_server_is_elsewhere_or_the_mode_is_named_Should_keep_Npgsql_s_choice(string connection, SslMode expected) =>
        Assert.That(SslModeOf(connection), Is.EqualTo(expected));

    static string? TargetOf(string connection) =>
        new NpgsqlConnectionStringBuilder(InventoryDatabase.ConnectionString(new DatabaseSettings(connection))).TargetSessionAttributes;

    [Test]
    public void When_several_hosts_are_named_without_a_target_Should_connect_to_the_primary() =>
        Assert.That(TargetOf("Host=pg1,pg2;Database=xtelem"), Is.EqualTo("primary"));

    [TestCase("Host=pg1,pg2;Database=xtelem;Target Session Attributes=read-write", "read-write")]
    [TestCase("Host=pg1;Database=xtelem", null)]
    public void When_the_target_is_named_or_there_is_one_host_Should_keep_it(string connection, string? expected) =>
        Assert.That(TargetOf(connection), Is.EqualTo(expected));
}
