using Dapper;
using Npgsql;

namespace Xtelemdb.Storage;

/// <summary>
/// Keeps the planner's statistics of the tables that grow with the data in step with them while they
/// grow fast. Autovacuum analyzes a table at most once a minute (autovacuum_naptime), so during the
/// first minutes of an initial sync or of a new host's back-fill the planner still takes a table of
/// tens of thousands of files for one of a few: it then looked each file of a list of 250 up by host
/// alone (file_origins_by_name, for moves) and read every file of the host 250 times, so that each
/// list cost in proportion to the table and the sync in proportion to its square. Here the tables are
/// analyzed each time the rows this process wrote to file_origins and file_replicas since the last
/// time reach a fifth of what the two hold (and at least MinimumRows), so at each fifth of growth,
/// each time reading a sample (ANALYZE reads 30,000 rows of a table), never a whole table.
/// In the background, one at a time: a list does not wait for it, and a failure changes nothing but
/// the plans (autovacuum still runs); after one, twice as many rows wait for the next attempt.
/// </summary>
sealed class GrowthStatistics(NpgsqlDataSource dataSource)
{
    const long MinimumRows = 2_000;
    const double Fraction = 0.2;

    // The tables lists write to, and the backlog their triggers fill. SKIP_LOCKED: a table another
    // session holds (a vacuum, a recount) is left to the next time, and nothing waits on this.
    const string Analyze = "analyze (skip_locked) file_origins, file_replicas, replica_backlog";
    const string Size = "select coalesce(sum(greatest(reltuples, 0)), 0)::bigint from pg_class where oid in ('file_origins'::regclass, 'file_replicas'::regclass)";

    long written;
    long threshold = MinimumRows;
    int running;

    /// <summary>Counts rows written; looks whether to analyze when they reach the threshold and no look runs.</summary>
    public void Wrote(int rows)
    {
        if (Interlocked.Add(ref written, rows) < Volatile.Read(ref threshold) || Interlocked.Exchange(ref running, 1) == 1)
            return;
        // Not the consumer's activity or log scope: this outlives the list that started it.
        using (ExecutionContext.SuppressFlow())
            _ = Task.Run(AnalyzeIfGrownAsync);
    }

    async Task AnalyzeIfGrownAsync()
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            // A process that starts beside large tables counts from their size, not from MinimumRows.
            var size = await connection.ExecuteScalarAsync<long>(Size);
            var due = Math.Max(MinimumRows, (long)(size * Fraction));
            if (Interlocked.Read(ref written) < due)
            {
                Volatile.Write(ref threshold, due);
                return;
            }
            Interlocked.Exchange(ref written, 0);
            // A user that does not own the tables gets a warning from PostgreSQL, not an error: autovacuum then does it alone.
            await connection.ExecuteAsync(new CommandDefinition(Analyze, commandTimeout: 600));
            size = await connection.ExecuteScalarAsync<long>(Size);
            Volatile.Write(ref threshold, Math.Max(MinimumRows, (long)(size * Fraction)));
        }
        catch (Exception)
        {
            // The database away, a standby (no ANALYZE during recovery), the process stopping: only the plans suffer.
            Volatile.Write(ref threshold, Math.Max(MinimumRows, Volatile.Read(ref threshold) * 2));
        }
        finally
        {
            Volatile.Write(ref running, 0);
        }
    }
}
