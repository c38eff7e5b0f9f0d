using Npgsql;
using Testcontainers.PostgreSql;
using Testcontainers.RabbitMq;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// The real PostgreSQL and RabbitMQ every real-tier test runs against, found once per run:
/// the ones named by XTELEMDB_TEST_PG and XTELEMDB_TEST_AMQP when given (scripts/test starts them
/// natively), else containers started with Testcontainers where a Docker engine answers.
/// </summary>
/// <remarks>
/// Parallelizable itself: NUnit runs a set-up fixture without it in its non-parallel shift, after
/// every other parallel fixture, so the real tier would wait for the slowest unit or consumer fixture.
/// </remarks>
[SetUpFixture]
[Parallelizable(ParallelScope.Self | ParallelScope.Fixtures)]
public sealed class TestServices
{
    /// <summary>An administrative connection string: tests create a database of their own with it.</summary>
    public static string PostgresAdmin { get; private set; } = "";
    /// <summary>amqp://user:password@host:port/ of the broker; tests make a virtual host of their own.</summary>
    public static Uri Amqp { get; private set; } = null!;
    /// <summary>http://host:port/ of the management API: the very calls the management UI makes.</summary>
    public static Uri Management { get; private set; } = null!;

    PostgreSqlContainer? postgres;
    RabbitMqContainer? rabbit;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        var pg = Environment.GetEnvironmentVariable("XTELEMDB_TEST_PG");
        var amqp = Environment.GetEnvironmentVariable("XTELEMDB_TEST_AMQP");
        var management = Environment.GetEnvironmentVariable("XTELEMDB_TEST_RABBIT_MANAGEMENT");
        if (string.IsNullOrEmpty(pg) || string.IsNullOrEmpty(amqp))
            (pg, amqp, management) = await StartContainersAsync();
        PostgresAdmin = pg;
        Amqp = new Uri(amqp);
        Management = new Uri(string.IsNullOrEmpty(management) ? $"http://{Amqp.Host}:15672/" : management);

        Dapper.DefaultTypeMap.MatchNamesWithUnderscores = true;
        // The services read their secrets from the environment, as in production; child processes inherit them.
        Environment.SetEnvironmentVariable("PGPASSWORD", new NpgsqlConnectionStringBuilder(PostgresAdmin).Password);
        var user = Amqp.UserInfo.Split(':');
        Environment.SetEnvironmentVariable("XTELEMDB_BROKER_USER", Uri.UnescapeDataString(user[0]));
        Environment.SetEnvironmentVariable("XTELEMDB_BROKER_PASSWORD", Uri.UnescapeDataString(user.ElementAtOrDefault(1) ?? ""));

        await using var connection = new NpgsqlConnection(PostgresAdmin);
        await connection.OpenAsync();
    }

    async Task<(string, string, string)> StartContainersAsync()
    {
        try
        {
            postgres = new PostgreSqlBuilder("postgres:15").Build();
            rabbit = new RabbitMqBuilder("rabbitmq:3.13-management").WithPortBinding(15672, true).Build();
            await Task.WhenAll(postgres.StartAsync(), rabbit.StartAsync());
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                "No services for the real-tier tests: set XTELEMDB_TEST_PG and XTELEMDB_TEST_AMQP (scripts/test does), " +
                "or run where a Docker engine answers. " + e.Message, e);
        }
        return (postgres.GetConnectionString(), rabbit.GetConnectionString(),
            $"http://{rabbit.Hostname}:{rabbit.GetMappedPublicPort(15672)}/");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (postgres is not null)
            await postgres.DisposeAsync();
        if (rabbit is not null)
            await rabbit.DisposeAsync();
    }
}
