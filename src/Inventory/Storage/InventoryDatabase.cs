using DbUp;
using Npgsql;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Inventory.Storage;

/// <summary>The connection to the inventory database and its schema.</summary>
public static class InventoryDatabase
{
    /// <summary>The connection string of the settings, with the password from PGPASSWORD (never from the TOML file).</summary>
    public static string ConnectionString(DatabaseSettings settings)
    {
        var builder = new NpgsqlConnectionStringBuilder(settings.Connection);
        if (string.IsNullOrEmpty(builder.Password) && Environment.GetEnvironmentVariable("PGPASSWORD") is { Length: > 0 } password)
            builder.Password = password;
        return builder.ConnectionString;
    }

    public static NpgsqlDataSource CreateDataSource(DatabaseSettings settings) => NpgsqlDataSource.Create(ConnectionString(settings));

    /// <summary>Applies the numbered scripts under Migrations/ that this database has not run yet.</summary>
    public static IReadOnlyList<string> Migrate(DatabaseSettings settings)
    {
        var upgrade = DeployChanges.To
            .PostgresqlDatabase(ConnectionString(settings))
            .WithScriptsEmbeddedInAssembly(typeof(InventoryDatabase).Assembly)
            .WithTransactionPerScript()
            .LogToNowhere()
            .Build()
            .PerformUpgrade();
        if (!upgrade.Successful)
            throw new InvalidOperationException($"database migration failed at {upgrade.ErrorScript?.Name}: {upgrade.Error.Message}", upgrade.Error);
        return upgrade.Scripts.Select(s => s.Name).ToArray();
    }
}
