using System.Net.Sockets;
using Npgsql;
using Xtelemdb.Storage;

namespace Xtelemdb.Tests.Unit;

/// <summary>Which database errors a consumer waits out (a restart, a failover) and which go to the error queue as before.</summary>
public sealed class DatabaseErrorsTests
{
    static PostgresException Postgres(string sqlState, string? table = null, string? where = null) =>
        new("server says no", "ERROR", "ERROR", sqlState, where: where, tableName: table);

    [TestCase("25006", TestName = "25006 a write on a read-only server (a standby, or one not promoted yet)")]
    [TestCase("57P01", TestName = "57P01 admin shutdown (a fast stop, or a connection ended by the promotion)")]
    [TestCase("57P02", TestName = "57P02 crash shutdown (a sibling backend crashed)")]
    [TestCase("57P03", TestName = "57P03 cannot connect now (starting up, replaying WAL)")]
    [TestCase("08006", TestName = "08006 connection failure")]
    [TestCase("53300", TestName = "53300 too many connections")]
    public void When_the_server_is_away_or_read_only_Should_be_transient(string sqlState) =>
        Assert.That(DatabaseErrors.IsTransient(Postgres(sqlState)), Is.True);

    [TestCase("40P01", TestName = "40P01 deadlock detected (two writers of the same files, one chosen to give way)")]
    [TestCase("40001", TestName = "40001 serialization failure")]
    public void When_a_transaction_lost_a_race_with_another_Should_be_transient(string sqlState) =>
        Assert.That(DatabaseErrors.IsTransient(Postgres(sqlState)), Is.True, "tried again, it finds the other transaction committed");

    [TestCase("23503", TestName = "23503 foreign key violation")]
    [TestCase("22021", TestName = "22021 a byte sequence not valid in the encoding")]
    [TestCase("42P01", TestName = "42P01 a table that does not exist")]
    [TestCase("28000", TestName = "28000 authentication refused")]
    public void When_the_request_itself_is_wrong_Should_not_be_transient(string sqlState) =>
        Assert.That(DatabaseErrors.IsTransient(Postgres(sqlState)), Is.False);

    [TestCase("54000", TestName = "54000 program limit exceeded (index row size … exceeds btree version 4 maximum 2704: a path too long)")]
    [TestCase("22021", TestName = "22021 a byte sequence not valid in the encoding (text the server cannot take)")]
    [TestCase("23514", TestName = "23514 check violation (a negative size)")]
    public void When_the_row_itself_cannot_be_stored_Should_refuse_the_row_for_good(string sqlState)
    {
        Assert.That(DatabaseErrors.RefusesTheRow(Postgres(sqlState, table: "file_origins")), Is.True);
        Assert.That(DatabaseErrors.IsTransient(Postgres(sqlState, table: "file_origins")), Is.False);
    }

    [TestCase("2201B", TestName = "2201B a replica's regular expression PostgreSQL rejects, raised in the backlog's trigger")]
    [TestCase("54001", TestName = "54001 stack depth, raised in the backlog's trigger")]
    public void When_the_refusal_comes_from_a_trigger_Should_not_refuse_the_row_for_good(string sqlState) =>
        Assert.That(DatabaseErrors.RefusesTheRow(Postgres(sqlState, table: "replica_backlog", where: "PL/pgSQL function origins_added() line 3 at SQL statement")), Is.False,
            "the replica set or the server is at fault, which an operator can mend");

    [TestCase("P0001", TestName = "P0001 raise_exception (a trigger's rule, which an operator may lift)")]
    [TestCase("42501", TestName = "42501 insufficient privilege (a grant may come)")]
    [TestCase("42P01", TestName = "42P01 a table that does not exist (a migration may come)")]
    [TestCase("40001", TestName = "40001 serialization failure (time-bound)")]
    [TestCase("57P01", TestName = "57P01 admin shutdown (time-bound)")]
    public void When_the_refusal_is_not_the_row_s_content_Should_not_refuse_the_row_for_good(string sqlState) =>
        Assert.That(DatabaseErrors.RefusesTheRow(Postgres(sqlState, table: "file_origins")), Is.False);

    [Test]
    public void When_a_pooled_connection_was_reset_or_refused_Should_be_transient()
    {
        Assert.That(DatabaseErrors.IsTransient(new NpgsqlException("Exception while reading from stream", new EndOfStreamException())), Is.True);
        Assert.That(DatabaseErrors.IsTransient(new NpgsqlException("Exception while connecting", new SocketException((int)SocketError.ConnectionRefused))), Is.True);
        Assert.That(DatabaseErrors.IsTransient(new NpgsqlException("Exception while writing to stream", new IOException("Connection reset by peer"))), Is.True);
    }

    [Test]
    public void When_no_host_of_several_is_a_primary_yet_Should_be_transient()
    {
        Assert.That(DatabaseErrors.IsTransient(new NpgsqlException("No suitable host was found.")), Is.True);
        var everyHost = new AggregateException(
            new NpgsqlException("Exception while connecting", new SocketException((int)SocketError.ConnectionRefused)),
            Postgres("57P03"));
        Assert.That(DatabaseErrors.IsTransient(new NpgsqlException("Unable to connect to a suitable host. Check inner exception for more details.", everyHost)), Is.True);
    }

    [Test]
    public void When_one_host_of_several_refuses_the_login_Should_not_be_transient()
    {
        var hosts = new AggregateException(new NpgsqlException("Exception while connecting", new SocketException((int)SocketError.ConnectionRefused)), Postgres("28P01"));
        Assert.That(DatabaseErrors.IsTransient(new NpgsqlException("Unable to connect to a suitable host. Check inner exception for more details.", hosts)), Is.False);
    }

    [Test]
    public void When_a_migration_failed_on_a_lost_connection_Should_look_inside_it() =>
        Assert.That(DatabaseErrors.IsTransient(new InvalidOperationException("database migration failed: …", Postgres("57P01"))), Is.True);

    [Test]
    public void When_the_error_is_not_the_database_s_Should_not_be_transient()
    {
        Assert.That(DatabaseErrors.IsTransient(new UnknownRecordException("ReplicaUpdated names replica 7, which is not registered")), Is.False);
        Assert.That(DatabaseErrors.IsTransient(new IOException("No space left on device")), Is.False, "a replica's disk, not the database");
        Assert.That(DatabaseErrors.IsTransient(new NpgsqlException("No password has been provided")), Is.False);
    }
}
