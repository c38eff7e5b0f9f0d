using Npgsql;

namespace Xtelemdb.Storage;

/// <summary>
/// Which database errors pass with time: the server restarting, or a primary lost and its standby
/// promoted. A message that met one is retried until the database is back, never faulted for good.
/// </summary>
public static class DatabaseErrors
{
    /// <summary>
    /// Npgsql's own transient errors (a connection refused, reset or timed out; 08xxx; 57P01 and
    /// 57P02, the server shutting down or crashed; 57P03, starting up or promoting; 40P01 and 40001,
    /// a deadlock or serialization failure, which the backlog's triggers can meet), 25006 (a write
    /// on a standby: the server connected to is, or became, read-only), and a multi-host connection
    /// that finds no primary yet (every host down, or the standby not promoted or not rechecked).
    /// Anywhere in the chain of inner exceptions: a migration's error wraps the database's.
    /// </summary>
    public static bool IsTransient(Exception error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException postgres:
                    return postgres.IsTransient || postgres.SqlState == PostgresErrorCodes.ReadOnlySqlTransaction;
                case NpgsqlException { IsTransient: true }:
                    return true;
                // NpgsqlMultiHostDataSource: "No suitable host was found." when every host is offline or of another role.
                case NpgsqlException npgsql when npgsql.GetType() == typeof(NpgsqlException) && npgsql.InnerException is null
                                                 && npgsql.Message.StartsWith("No suitable host", StringComparison.Ordinal):
                    return true;
                // …and "Unable to connect to a suitable host", with each host's error inside.
                case AggregateException aggregate when aggregate.InnerExceptions.Count > 0:
                    return aggregate.InnerExceptions.All(IsTransient);
            }
        }
        return false;
    }

    /// <summary>
    /// Whether the database refuses a row for what the row holds, so that no retry and no repair
    /// short of another schema lets it in: a data exception (class 22: text the server cannot
    /// take), an integrity violation (23: a check), a program limit (54: a path too long for the
    /// index, "index row size … exceeds btree version 4 maximum 2704"), raised by the origin table
    /// itself. The same classes raised inside a trigger (the backlog's: a replica's regular expression
    /// PostgreSQL rejects, a stack depth, an overflow) come from the replica set or the server, which
    /// an operator can mend: not the row's.
    /// </summary>
    public static bool RefusesTheRow(PostgresException error) =>
        error.SqlState[..2] is "22" or "23" or "54" && error.TableName == "file_origins" && string.IsNullOrEmpty(error.Where);
}
