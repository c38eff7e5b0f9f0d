using Npgsql;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>
/// A PostgreSQL primary and a hot standby of one test's own, as the README recommends them: the
/// standby made with pg_basebackup -R and streaming WAL, synchronously (a commit returns once the
/// standby has flushed it, so no acknowledged commit is lost when the standby is promoted).
/// </summary>
public sealed class OwnDatabasePair : IAsyncDisposable
{
    readonly string root;

    public OwnDatabasePair(string root)
    {
        this.root = root;
        // On the primary's command line only: the standby, once promoted, runs alone and waits for no standby.
        Primary = new OwnDatabase(Path.Combine(root, "primary"),
            "wal_level=replica", "max_wal_senders=5", "synchronous_standby_names=*", "synchronous_commit=on");
        // initdb's pg_hba.conf has this line already; the pair depends on it, so it says so.
        File.AppendAllText(Path.Combine(Primary.Root, "data", "pg_hba.conf"), "host replication xtelem 127.0.0.1/32 trust\n");
    }

    public OwnDatabase Primary { get; }
    public StandbyDatabase Standby { get; private set; } = null!;

    /// <summary>Npgsql's multi-host string, as an operator writes it in [database] connection.</summary>
    public string Connection =>
        $"Host=127.0.0.1:{Primary.Port},127.0.0.1:{Standby.Port};Database=postgres;Username=xtelem;Target Session Attributes=primary";

    /// <summary>Starts the primary, clones it into the standby, and waits until the standby streams synchronously.</summary>
    public async Task StartAsync()
    {
        await Primary.StartAsync();
        Standby = new StandbyDatabase(Path.Combine(root, "standby"), Primary);
        await Standby.StartAsync();
        await Eventually.True(async () => await Primary.ScalarAsync<string>("select sync_state from pg_stat_replication") == "sync",
            TimeSpan.FromSeconds(60), "the standby streaming as the primary's synchronous standby");
    }

    public async ValueTask DisposeAsync()
    {
        if (Standby is not null)
            await Standby.DisposeAsync();
        await Primary.DisposeAsync();
    }
}

/// <summary>A hot standby of another OwnDatabase: its data folder is a base backup of the primary's, with standby.signal.</summary>
public sealed class StandbyDatabase : OwnDatabase
{
    public StandbyDatabase(string root, OwnDatabase primary) : base(root, ["hot_standby=on"], initialize: false) =>
        // -R: standby.signal and primary_conninfo (the primary's host, port and user) in postgresql.auto.conf.
        Shell.Run("runuser", "-u", "postgres", "--", Path.Combine(Bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", primary.Port.ToString(),
            "-U", "xtelem", "-D", DataFolder, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync");

    /// <summary>Promotes it to a primary; returns once it accepts writes.</summary>
    public async Task PromoteAsync()
    {
        Assert.That(await this.ScalarAsync<bool>("select pg_promote(wait => true, wait_seconds => 60)"), Is.True, "pg_promote");
        TestContext.Progress.WriteLine($"postgres :{Port} promoted");
    }
}

/// <summary>One query on a server of the test's own, outside any pool.</summary>
public static class OwnDatabaseQueries
{
    public static async Task<T?> ScalarAsync<T>(this OwnDatabase database, string sql)
    {
        await using var connection = new NpgsqlConnection(database.Connection + ";Pooling=false;Timeout=5");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T?)await command.ExecuteScalarAsync();
    }
}
