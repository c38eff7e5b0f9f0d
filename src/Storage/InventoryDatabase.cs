using System.Data.Common;
using System.Net;
using Dapper;
using DbUp;
using DbUp.Engine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Storage;

/// <summary>The connection to the inventory database and its schema.</summary>
public static class InventoryDatabase
{
    /// <summary>
    /// The connection string of the settings, with the password from PGPASSWORD (never from the TOML
    /// file). To a server on this machine, TLS is off unless the string names an SSL Mode: on the
    /// loopback it protects nothing, and it costs a quarter of the inventory's ingest rate. Several
    /// hosts (a primary and its standbys) without Target Session Attributes connect to the primary:
    /// every service writes, and Npgsql's default would take whichever host answers first.
    /// </summary>
    public static string ConnectionString(DatabaseSettings settings)
    {
        var builder = new NpgsqlConnectionStringBuilder(settings.Connection);
        if (string.IsNullOrEmpty(builder.Password) && Environment.GetEnvironmentVariable("PGPASSWORD") is { Length: > 0 } password)
            builder.Password = password;
        if (!NamesSslMode(settings.Connection) && IsLoopback(builder.Host))
            builder.SslMode = SslMode.Disable;
        if (builder.Host?.Contains(',') == true && builder.TargetSessionAttributes is null
            && Environment.GetEnvironmentVariable("PGTARGETSESSIONATTRS") is null or "")
            builder.TargetSessionAttributes = "primary";
        return builder.ConnectionString;
    }

    static bool NamesSslMode(string connection)
    {
        var given = new DbConnectionStringBuilder { ConnectionString = connection };
        return given.Keys.Cast<string>().Any(k => k.Replace(" ", "", StringComparison.Ordinal).Equals("sslmode", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Every host of the string is this machine (a Unix socket never uses TLS).</summary>
    static bool IsLoopback(string? hosts) =>
        !string.IsNullOrEmpty(hosts) && hosts.Split(',').Select(HostName).All(name =>
            name.Equals("localhost", StringComparison.OrdinalIgnoreCase) || IPAddress.TryParse(name, out var address) && IPAddress.IsLoopback(address));

    /// <summary>"h:5432" is h, "[::1]:5432" is ::1, and "::1" stays itself.</summary>
    static string HostName(string host)
    {
        host = host.Trim();
        if (host.StartsWith('[') && host.IndexOf(']') is > 0 and var end)
            return host[1..end];
        return host.Count(c => c == ':') == 1 ? host[..host.IndexOf(':')] : host;
    }

    public static NpgsqlDataSource CreateDataSource(DatabaseSettings settings) => NpgsqlDataSource.Create(ConnectionString(settings));

    /// <summary>Applies the numbered scripts under Migrations/ that this database has not run yet.</summary>
    /// <param name="host">This machine's host: a local replica registered before replicas had hosts is its folder.</param>
    /// <param name="through">Stop after this script: a database as an older release left it (tests of the migrations).</param>
    public static IReadOnlyList<string> Migrate(DatabaseSettings settings, string host, string? through = null)
    {
        var upgrade = DeployChanges.To
            .PostgresqlDatabase(ConnectionString(settings))
            .WithScripts(Scripts().Where(script => through is null || string.CompareOrdinal(script.Name, through) <= 0))
            .WithVariable("registering_host", host.Replace("'", "''", StringComparison.Ordinal))
            .WithTransactionPerScript()
            // A script that recounts every file (009's backlog) runs for minutes at ten million files, not Npgsql's 30 s.
            .WithExecutionTimeout(TimeSpan.FromHours(1))
            .LogToNowhere()
            .Build()
            .PerformUpgrade();
        if (!upgrade.Successful)
            throw new InvalidOperationException(upgrade.ErrorScript is { } script
                ? $"database migration failed at {script.Name}: {upgrade.Error.Message}"
                : $"database migration failed: {upgrade.Error.Message}", upgrade.Error);
        return upgrade.Scripts.Select(s => s.Name).ToArray();
    }

    /// <summary>
    /// Migrates only when the journal lacks one of this build's scripts. An operator command starts
    /// with this: a current schema costs one query, where DbUp's upgrade costs hundreds of
    /// milliseconds on every call. A journal that also names scripts this build does not know (a
    /// newer release migrated the database) is current for it, as it is for DbUp.
    /// </summary>
    /// <returns>The scripts applied: none when the schema was current.</returns>
    public static async Task<IReadOnlyList<string>> MigrateIfBehindAsync(NpgsqlDataSource dataSource, DatabaseSettings settings, string host,
        CancellationToken cancellationToken)
    {
        var journaled = await JournaledScriptsAsync(dataSource, cancellationToken);
        return EmbeddedScripts().All(script => journaled.Contains(script.Name)) ? [] : Migrate(settings, host);
    }

    /// <summary>The scripts DbUp's journal (its table schemaversions) lists; none where it never ran.</summary>
    static async Task<HashSet<string>> JournaledScriptsAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            var names = await connection.QueryAsync<string>(new CommandDefinition("select scriptname from schemaversions", cancellationToken: cancellationToken));
            return names.ToHashSet(StringComparer.Ordinal);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return [];
        }
    }

    /// <summary>The script that gave replicas their hosts (and renamed local replicas' queues).</summary>
    public const string ReplicaHostsScript = "004_replica_hosts.sql";

    /// <summary>The embedded Migrations/*.sql, journaled by file name ("001_inventory.sql") so that moving them keeps the journal.</summary>
    static IEnumerable<SqlScript> Scripts()
    {
        var assembly = typeof(InventoryDatabase).Assembly;
        foreach (var (resource, name) in EmbeddedScripts())
        {
            using var reader = new StreamReader(assembly.GetManifestResourceStream(resource)!);
            yield return new SqlScript(name, reader.ReadToEnd());
        }
    }

    /// <summary>Each embedded script's resource and the name it is journaled by, in the order they run.</summary>
    static IEnumerable<(string Resource, string Name)> EmbeddedScripts()
    {
        const string folder = ".Migrations.";
        return typeof(InventoryDatabase).Assembly.GetManifestResourceNames()
            .Where(n => n.Contains(folder, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => (n, n[(n.IndexOf(folder, StringComparison.Ordinal) + folder.Length)..]));
    }

    /// <summary>The data source and the store, once per process.</summary>
    public static IServiceCollection AddInventoryStore(this IServiceCollection services, DatabaseSettings settings)
    {
        services.TryAddSingleton(_ => CreateDataSource(settings));
        services.TryAddSingleton<InventoryStore>();
        services.TryAddSingleton<FixityStore>();
        if (!services.Any(d => d.ServiceType == typeof(DatabaseHealthCheck)))
        {
            services.AddSingleton<DatabaseHealthCheck>();
            services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database");
        }
        return services;
    }
}
