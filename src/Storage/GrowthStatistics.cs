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
/// analyzed each time the rows this process wrote since the last time reach a fifth of the table (and
/// at least MinimumRows): about a dozen times while a table grows to a million rows, each reading a
/// sample (ANALYZE reads 30,000 rows), never the whole table. In the background, one at a time: a
/// list does not wait for it, and a failure changes nothing but the plans (autovacuum still runs).
/// </summary>
sealed class GrowthStatistics(NpgsqlDataSource dataSource)
{
    const long MinimumRows = 2_000;
    const double Fraction = 0.2;

    // The tables lists write to, and the backlog their triggers fill: analyzed together.
    const string Analyze = "analyze file_origins, file_replicas, replica_backlog";
    const string Size = "select greatest(reltuples, 0)::bigint from pg_class where oid = 'file_origins'::regclass";

    long written;
    long threshold = MinimumRows;
    int running;

    /// <summary>Counts rows written; starts an ANALYZE when they reach the threshold and none runs.</summary>
    public void Wrote(int rows)
    {
        if (Interlocked.Add(ref written, rows) < Volatile.Read(ref threshold) || Interlocked.Exchange(ref running, 1) == 1)
            return;
        Interlocked.Exchange(ref written, 0);
        _ = Task.Run(AnalyzeAsync);
    }

    async Task AnalyzeAsync()
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            // A user that does not own the tables gets a warning from PostgreSQL, not an error: autovacuum then does it alone.
            await connection.ExecuteAsync(Analyze);
            var rows = await connection.ExecuteScalarAsync<long>(Size);
            Volatile.Write(ref threshold, Math.Max(MinimumRows, (long)(rows * Fraction)));
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or ObjectDisposedException)
        {
            // The database is away or the process stops: the next lists' rows start the next attempt.
        }
        finally
        {
            Volatile.Write(ref running, 0);
        }
    }
}
