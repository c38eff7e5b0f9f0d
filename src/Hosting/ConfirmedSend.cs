namespace Xtelemdb.Hosting;

/// <summary>
/// Bounds the wait for the broker's publisher confirm. After the broker dies, RabbitMQ.Client 7.2
/// can leave a publish on the dead channel waiting for a confirm forever
/// (rabbitmq/rabbitmq-dotnet-client#1930): a watcher or consumer stuck there would stop the
/// pipeline. Past the bound the send fails instead; the caller's retry or the next poll sends
/// again on the new connection, and a duplicate costs nothing.
/// </summary>
public static class ConfirmedSend
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    static long failingSinceTicks;

    /// <summary>
    /// Since when every send has timed out, with none confirmed in between; null while sends succeed.
    /// The bus can report itself healthy in that state, so the watchdog reads this too.
    /// </summary>
    public static DateTime? FailingSince => Interlocked.Read(ref failingSinceTicks) is var ticks and > 0 ? new DateTime(ticks, DateTimeKind.Utc) : null;

    public static async Task RunAsync(Func<CancellationToken, Task> send, string what, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(Timeout);
        try
        {
            // WaitAsync too: the hung wait does not always observe the token.
            await send(bounded.Token).WaitAsync(Timeout, cancellationToken);
            Interlocked.Exchange(ref failingSinceTicks, 0);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            Interlocked.CompareExchange(ref failingSinceTicks, DateTime.UtcNow.Ticks, 0);
            throw new TimeoutException($"the broker did not confirm {what} within {Timeout.TotalSeconds:0} s; sending again", e);
        }
    }
}
