using MassTransit;

namespace Xtelemdb.Tests.Support;

/// <summary>
/// Counts the messages a bus in this process has consumed (acknowledged, or faulted): a test waits
/// for that positive signal instead of sleeping before it asserts that something did not happen.
/// </summary>
/// <remarks>A batch consumer's messages count one by one, as each of their consumes completes.</remarks>
public sealed class Consumed<T> : IConsumeMessageObserver<T> where T : class
{
    int count;

    public int Count => Volatile.Read(ref count);

    public Task WaitAsync(int atLeast, TimeSpan timeout) =>
        Eventually.True(() => Count >= atLeast, timeout, $"{atLeast} {typeof(T).Name} consumed (so far {Count})");

    public Task PreConsume(ConsumeContext<T> context) => Task.CompletedTask;

    public Task PostConsume(ConsumeContext<T> context) => Add();

    public Task ConsumeFault(ConsumeContext<T> context, Exception exception) => Add();

    Task Add()
    {
        Interlocked.Increment(ref count);
        return Task.CompletedTask;
    }
}
