using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xtelemdb.Storage;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Consumers;

/// <summary>
/// The consumers' retry on MassTransit's in-memory harness: a database away outlasts the short
/// retry of other errors and is still waited out; any other error keeps the short one.
/// </summary>
public sealed class DatabaseRetryTests
{
    public sealed record Work(string Error, int Failures);

    /// <summary>Fails the first Failures attempts of each message with the error it names.</summary>
    public sealed class FlakyConsumer : IConsumer<Work>
    {
        public static int Attempts;

        public Task Consume(ConsumeContext<Work> context)
        {
            if (Interlocked.Increment(ref Attempts) > context.Message.Failures)
                return Task.CompletedTask;
            throw context.Message.Error switch
            {
                "read-only" => new PostgresException("cannot execute INSERT in a read-only transaction", "ERROR", "ERROR", PostgresErrorCodes.ReadOnlySqlTransaction),
                "no primary" => new NpgsqlException("No suitable host was found."),
                "deadlock" => new PostgresException("deadlock detected", "ERROR", "ERROR", PostgresErrorCodes.DeadlockDetected),
                _ => new InvalidOperationException("a bug"),
            };
        }
    }

    /// <summary>Other errors: two retries at once. The database's: ten at 10 ms.</summary>
    public sealed class FlakyConsumerDefinition : ConsumerDefinition<FlakyConsumer>
    {
        protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpoint, IConsumerConfigurator<FlakyConsumer> consumer, IRegistrationContext context) =>
            endpoint.UseRetryThroughDatabaseOutages(retry => retry.Immediate(2), Enumerable.Repeat(TimeSpan.FromMilliseconds(10), 10).ToArray());
    }

    ServiceProvider provider = null!;
    ITestHarness harness = null!;

    [SetUp]
    public async Task StartAsync()
    {
        FlakyConsumer.Attempts = 0;
        provider = new ServiceCollection()
            .AddMassTransitTestHarness(bus => bus.AddConsumer<FlakyConsumer, FlakyConsumerDefinition>())
            .BuildServiceProvider(validateScopes: true);
        harness = provider.GetRequiredService<ITestHarness>();
        harness.TestInactivityTimeout = TimeSpan.FromSeconds(10); // retries on a loaded machine may be quiet for seconds
        await harness.Start();
    }

    [TearDown]
    public async Task StopAsync()
    {
        await harness.Stop();
        await provider.DisposeAsync();
    }

    [TestCase("read-only")]
    [TestCase("no primary")]
    public async Task When_the_database_is_away_longer_than_the_short_retry_Should_wait_it_out_and_not_fault(string error)
    {
        await harness.Bus.Publish(new Work(error, Failures: 8));

        Assert.That(await harness.Consumed.Any<Work>(m => m.Exception is null), Is.True, "the ninth attempt succeeds");
        Assert.That(harness.Published.Select<Fault<Work>>(SoFar.Only), Is.Empty);
        Assert.That(FlakyConsumer.Attempts, Is.EqualTo(9));
    }

    /// <summary>Migration 009's triggers write the backlog beside every file and copy: two writers of the same files may deadlock, and the one chosen to give way tries again.</summary>
    [Test]
    public async Task When_a_write_deadlocks_with_another_Should_retry_it_and_not_fault()
    {
        await harness.Bus.Publish(new Work("deadlock", Failures: 4));

        Assert.That(await harness.Consumed.Any<Work>(m => m.Exception is null), Is.True, "the fifth attempt succeeds");
        Assert.That(harness.Published.Select<Fault<Work>>(SoFar.Only), Is.Empty);
        Assert.That(FlakyConsumer.Attempts, Is.EqualTo(5));
    }

    [Test]
    public async Task When_the_database_stays_away_past_the_window_Should_fault()
    {
        await harness.Bus.Publish(new Work("no primary", Failures: int.MaxValue));

        Assert.That(await harness.Published.Any<Fault<Work>>(), Is.True);
        Assert.That(FlakyConsumer.Attempts, Is.EqualTo(11), "the first attempt and ten retries, none of them the short retry's");
    }

    [Test]
    public async Task When_the_error_is_not_the_database_s_Should_keep_the_short_retry()
    {
        await harness.Bus.Publish(new Work("bug", Failures: int.MaxValue));

        Assert.That(await harness.Published.Any<Fault<Work>>(), Is.True);
        Assert.That(FlakyConsumer.Attempts, Is.EqualTo(3), "the first attempt and two retries");
    }
}
