namespace Xtelemdb.Tests.Support;

/// <summary>Waits for a condition the pipeline reaches asynchronously; fails with a description when it does not.</summary>
public static class Eventually
{
    /// <summary>How long a test waits for a signal that comes in a second or two on a quiet machine: a loaded CI machine took over 30 s.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    public static async Task<T> Get<T>(Func<Task<T?>> probe, Func<T?, bool> done, TimeSpan timeout, string what)
        where T : class
    {
        var deadline = DateTime.UtcNow + timeout;
        T? last = default;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await probe();
                if (done(last))
                    return last!;
            }
            catch (Exception e) when (e is not AssertionException)
            {
                // Not there yet (a table not migrated, a file not written): look again.
                last = null;
                TestContext.Progress.WriteLine($"waiting for {what}: {e.Message}");
            }
            await Task.Delay(100);
        }
        Assert.Fail($"Timed out after {timeout.TotalSeconds}s waiting for {what}; last seen: {last}");
        return default!;
    }

    public static async Task True(Func<Task<bool>> probe, TimeSpan timeout, string what) =>
        await Get<object>(async () => await probe() ? true : null, ok => ok is not null, timeout, what);

    public static Task True(Func<bool> probe, TimeSpan timeout, string what) =>
        True(() => Task.FromResult(probe()), timeout, what);
}
