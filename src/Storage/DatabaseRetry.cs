using MassTransit;

namespace Xtelemdb.Storage;

/// <summary>
/// A consumer's retry that waits out a database away for a while (restarting, or a lost primary
/// while its standby is promoted): errors of <see cref="DatabaseErrors.IsTransient"/> are retried
/// every few seconds for five minutes, the time a failover tool or an operator on call takes; any
/// other error keeps the consumer's own, shorter retry.
/// </summary>
public static class DatabaseRetry
{
    /// <summary>1, 2 and 4 s, then every 5 s: a promoted standby is found within seconds of being ready.</summary>
    public static readonly TimeSpan[] Intervals =
        [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), .. Enumerable.Repeat(TimeSpan.FromSeconds(5), 59)];

    /// <param name="intervals">The waits between attempts on a transient database error; default <see cref="Intervals"/>.</param>
    public static void UseRetryThroughDatabaseOutages(this IConsumePipeConfigurator endpoint, Action<IRetryConfigurator> otherErrors,
        TimeSpan[]? intervals = null)
    {
        // Outer: only the database's transient errors, over the long window.
        endpoint.UseMessageRetry(retry =>
        {
            retry.Intervals(intervals ?? Intervals);
            retry.Handle<Exception>(DatabaseErrors.IsTransient);
        });
        // Inner: everything else, as the consumer says; a transient database error passes straight out to the outer.
        endpoint.UseMessageRetry(retry =>
        {
            otherErrors(retry);
            retry.Ignore<Exception>(DatabaseErrors.IsTransient);
        });
    }
}
