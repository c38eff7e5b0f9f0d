using MassTransit;

namespace Xtelemdb.Tests.Support;

/// <summary>
/// Counts the messages a bus in this process has consumed (acknowledged, or faulted): a test waits
/// for that positive signal instead of sleeping before it asserts that something did not happen.
/// </summary>
/// <param name="weight">How many messages one consume stands for (a batch's length); default 1.</param>
public sealed class Consumed<T>(Func<T, int>? weight = null) : IConsumeMessageObserver<T> where T : class
{
    int count;

    public int Count => Volatile.Read(ref count);

    public Task WaitAsync(int atLeast, TimeSpan timeout) =>
        Eventually.True(() => Count >= atLeast, timeout, $"{atLeast} {typeof(T).Name} consumed (so far {Count})");

    public Task PreConsume(ConsumeContext<T> context) => Task.CompletedTask;

    public Task PostConsume(ConsumeContext<T> context) => Add(context.Message);

    public Task ConsumeFault(ConsumeContext<T> context, Exception exception) => Add(context.Message);

    Task Add(T message)
    {
        Interlocked.Add(ref count, weight?.Invoke(message) ?? 1);
        return Task.CompletedTask;
    }
}
