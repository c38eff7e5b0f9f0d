using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Xtelemdb.Storage;

/// <summary>
/// Keeps the planner's statistics of the tables that grow with the data in step with them while they
/// grow fast. Autovacuum analyzes a table at most once a minute (autovacuum_naptime), so during the
/// first minutes of an initial sync or of a new host's back-fill the planner still takes a table of
/// tens of thousands of files for one of a few: it then looked each file of a list of 250 up by host
/// alone (file_origins_by_name, for moves) and read every file of the host 250 times, so that each
/// list cost in proportion to the table and the sync in proportion to its square. Here the tables are
/// analyzed each time the rows this process wrote to file_origins, or to file_replicas, since the
/// last time reach a fifth of that table (and at least MinimumRows), each time reading a sample
/// (ANALYZE reads 30,000 rows of a table), never a whole table.
/// The replica set, and the backlog a new replica fills, are analyzed whenever a replica is
/// registered: autovacuum analyzes a table after 50 changed rows, so a replicas table of a few rows
/// never was, and the planner took it for 220 (ten pages' worth). The backlog statements of each
/// list then expected 220 copies per file and joined the whole backlog rather than look up the
/// list's rows.
/// In the background, one look at a time: a list or a registration does not wait for it, and a
/// failure changes nothing but the plans (autovacuum still runs); after one, twice as many rows wait
/// for the next attempt.
/// </summary>
sealed class GrowthStatistics(NpgsqlDataSource dataSource, ILogger logger)
{
    const long MinimumRows = 2_000;
    const double Fraction = 0.2;

    // The tables lists write to, and the backlog their triggers fill. SKIP_LOCKED: a table another
    // session holds (a vacuum, a recount) is left to the next time, and nothing waits on this.
    const string Analyze = "analyze (skip_locked) replicas, file_origins, file_replicas, replica_backlog";
    // A new replica adds a row per file it selects to the backlog: its statistics follow at once too.
    const string AnalyzeReplicaSet = "analyze (skip_locked) replicas, replica_backlog";
    const string Sizes = """
        select greatest((select reltuples from pg_class where oid = 'file_origins'::regclass), 0)::bigint as Origins,
               greatest((select reltuples from pg_class where oid = 'file_replicas'::regclass), 0)::bigint as Replicas
        """;

    sealed class Table
    {
        public long Written;
        public long Threshold = MinimumRows;
    }

    readonly Table origins = new(), replicas = new();
    int running, replicaSetChanged;

    public void WroteOrigins(int rows) => Wrote(origins, rows);

    public void WroteReplicas(int rows) => Wrote(replicas, rows);

    public void RegisteredReplica()
    {
        Volatile.Write(ref replicaSetChanged, 1);
        LookUnlessRunning();
    }

    /// <summary>Counts rows written; looks whether to analyze when a table's reach its threshold and no look runs.</summary>
    void Wrote(Table table, int rows)
    {
        if (Interlocked.Add(ref table.Written, rows) >= Volatile.Read(ref table.Threshold))
            LookUnlessRunning();
    }

    void LookUnlessRunning()
    {
        if (Interlocked.Exchange(ref running, 1) == 1)
            return;
        // Unsafe: without the consumer's execution context (its activity, its log scope), which this outlives.
        ThreadPool.UnsafeQueueUserWorkItem(static self => _ = self.AnalyzeIfDueAsync(), this, preferLocal: false);
    }

    async Task AnalyzeIfDueAsync()
    {
        var replicaSet = Interlocked.Exchange(ref replicaSetChanged, 0) == 1;
        var growthLook = true;
        var failed = false;
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            // A process that starts beside large tables counts from their size, not from MinimumRows.
            var before = await connection.QuerySingleAsync<(long Origins, long Replicas)>(Sizes);
            var originsWritten = Interlocked.Read(ref origins.Written);
            var replicasWritten = Interlocked.Read(ref replicas.Written);
            if (originsWritten < Due(before.Origins) && replicasWritten < Due(before.Replicas))
            {
                DueAt(before);
                growthLook = false;
                // A user that does not own the tables gets a warning from PostgreSQL, not an error.
                if (replicaSet)
                    await connection.ExecuteAsync(new CommandDefinition(AnalyzeReplicaSet, commandTimeout: 600));
                return;
            }
            // What was counted until now is covered by this ANALYZE; rows written meanwhile count for the next.
            Interlocked.Add(ref origins.Written, -originsWritten);
            Interlocked.Add(ref replicas.Written, -replicasWritten);
            // A user that does not own the tables gets a warning from PostgreSQL, not an error: autovacuum then does it alone.
            await connection.ExecuteAsync(new CommandDefinition(Analyze, commandTimeout: 600));
            DueAt(await connection.QuerySingleAsync<(long Origins, long Replicas)>(Sizes));
        }
        catch (Exception e)
        {
            // The database away, a standby (no ANALYZE during recovery), the process stopping: only the plans suffer.
            failed = true;
            // The replica set waits for the next look (a registration, or the tables' growth), not for a retry now.
            if (replicaSet)
                Volatile.Write(ref replicaSetChanged, 1);
            if (growthLook)
            {
                Volatile.Write(ref origins.Threshold, Volatile.Read(ref origins.Threshold) * 2);
                Volatile.Write(ref replicas.Threshold, Volatile.Read(ref replicas.Threshold) * 2);
            }
            logger.LogWarning("Could not analyze the inventory's tables ({Error}); autovacuum still will, and this tries again after {Rows} more files are recorded{OrRegistered}",
                e.Message, Volatile.Read(ref origins.Threshold), replicaSet ? " or a replica is registered" : "");
        }
        finally
        {
            // A full fence: the look at replicaSetChanged below must not come before this write.
            Interlocked.Exchange(ref running, 0);
        }
        // A replica registered while this look ran gets one of its own.
        if (!failed && Volatile.Read(ref replicaSetChanged) == 1)
            LookUnlessRunning();
    }

    /// <summary>The next look comes when the rows written reach a fifth of each table as it now is.</summary>
    void DueAt((long Origins, long Replicas) sizes)
    {
        Volatile.Write(ref origins.Threshold, Due(sizes.Origins));
        Volatile.Write(ref replicas.Threshold, Due(sizes.Replicas));
    }

    static long Due(long rows) => Math.Max(MinimumRows, (long)(rows * Fraction));
}
