using System.Diagnostics;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Xtelemdb.Tests.Support;
using Xtelemdb.Cli;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Tests.Real;

public sealed record OriginRow(string OriginHost, string OriginPath, DateTime Mtime, long SizeBytes, DateTime? MissingSince);

/// <summary>A child xtelemdb process; what it prints is kept, and echoed to the test's progress log.</summary>
public sealed class XtelemdbProcess
{
    readonly System.Collections.Concurrent.ConcurrentQueue<string> lines = new();

    public XtelemdbProcess(Process process)
    {
        Process = process;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Process Process { get; }
    public string Output => string.Join("\n", lines);

    void Keep(string? line)
    {
        if (line is null)
            return;
        lines.Enqueue(line);
        TestContext.Progress.WriteLine("[xtelemdb] " + line);
    }
}

public sealed record ReplicaRow(string OriginPath, DateTime Mtime, long SizeBytes, string ReplicaPath, string? Checksum, DateTime CopiedAt);

/// <summary>
/// One test's own world on the shared services: a database, a RabbitMQ virtual host, a data
/// folder and backup folders, a TOML file; and the pipeline started from them as production starts it.
/// </summary>
public sealed class TestPipeline : IAsyncDisposable
{
    public const string Host = "exao-test";

    readonly List<IHost> hosts = [];
    readonly List<Process> processes = [];

    public string Name { get; } = "xt_" + Guid.NewGuid().ToString("N")[..10];
    public string Root { get; }
    public string Data => Path.Combine(Root, "data");
    public string ConfigPath => Path.Combine(Root, "xtelemdb.toml");
    public string Connection => new NpgsqlConnectionStringBuilder(TestServices.PostgresAdmin) { Database = Name }.ConnectionString;
    public Management Management { get; }
    string BrokerUser => Uri.UnescapeDataString(TestServices.Amqp.UserInfo.Split(':')[0]);

    TestPipeline()
    {
        Root = Path.Combine(Path.GetTempPath(), Name);
        Directory.CreateDirectory(Data);
        var password = Uri.UnescapeDataString(TestServices.Amqp.UserInfo.Split(':').ElementAtOrDefault(1) ?? "");
        Management = new Management(TestServices.Management, BrokerUser, password);
    }

    public static async Task<TestPipeline> CreateAsync()
    {
        var pipeline = new TestPipeline();
        await using (var connection = new NpgsqlConnection(TestServices.PostgresAdmin))
            await connection.ExecuteAsync($"create database {pipeline.Name}");
        await pipeline.Management.CreateVirtualHostAsync(pipeline.Name, pipeline.BrokerUser);
        return pipeline;
    }

    /// <summary>A backup folder under the test's root, made if missing, with the marker add_replica writes.</summary>
    public string Backup(string name = "backup")
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(path);
        Mark(path);
        return path;
    }

    /// <summary>Writes a replica's marker, as add_replica does (again after a fresh file system is mounted there).</summary>
    public static void Mark(string replicaFolder) =>
        File.WriteAllText(Path.Combine(replicaFolder, Replicator.Copying.ReplicaMarker.FileName), "test replica\n");

    /// <summary>A local replica's name: "exao-test:/tmp/…/backup", as queues and replica_list say it.</summary>
    public static string Named(string localReplica) => $"{Host}:{localReplica}";

    /// <summary>Writes the TOML file the way an operator would, with no secret in it, and loads it.</summary>
    /// <param name="tables">The body of a replica's [replicas."URL"] table, where it needs more than local = true.</param>
    /// <param name="database">Another database than the test's own (a fault test's own server).</param>
    /// <param name="broker">Another broker than the test's virtual host.</param>
    /// <param name="brokerKeys">More lines of the [broker] table, such as queue_type.</param>
    public XtelemdbSettings Configure(IEnumerable<string> replicas, string settle = "200ms", string maxInterval = "1s", string pollInterval = "1m",
        IReadOnlyDictionary<string, string>? tables = null, string? database = null, Uri? broker = null, string brokerKeys = "")
    {
        var connection = new NpgsqlConnectionStringBuilder(database ?? Connection) { Password = null };
        var toml = $"""
            host = "{Host}"

            [database]
            connection = "{connection.ConnectionString}"

            [broker]
            uri = "{broker?.ToString() ?? $"amqp://{TestServices.Amqp.Host}:{TestServices.Amqp.Port}/{Name}"}"
            {brokerKeys}

            [watch]
            roots = ["{Data}"]
            settle = "{settle}"
            max_interval = "{maxInterval}"
            poll_interval = "{pollInterval}"

            [replicator]
            concurrency = 4

            """;
        foreach (var replica in replicas)
            toml += $"[replicas.\"{replica}\"]\n{tables?.GetValueOrDefault(replica) ?? "local = true"}\n\n";
        File.WriteAllText(ConfigPath, toml);
        return SettingsLoader.Load(ConfigPath);
    }

    public async Task<IHost> StartAsync(XtelemdbSettings settings, PipelineServices services, Action<IServiceCollection>? configure = null)
    {
        var host = PipelineHost.Create(settings, services, configure);
        hosts.Add(host);
        await host.StartAsync();
        return host;
    }

    public async Task StopAsync(IHost host)
    {
        await host.StopAsync();
        host.Dispose();
        hosts.Remove(host);
    }

    /// <summary>Runs the xtelemdb executable, as a separate process on this test's TOML file.</summary>
    public XtelemdbProcess StartProcess(params string[] arguments) => StartProcess(null, arguments);

    /// <param name="environment">Variables to set for it, such as HOME for an operator's own ~/.ssh.</param>
    public XtelemdbProcess StartProcess(IReadOnlyDictionary<string, string>? environment, params string[] arguments) =>
        StartCommandLine(environment, [.. arguments, "--config", ConfigPath]);

    /// <summary>Runs the xtelemdb executable with exactly these arguments; it is stopped with the test.</summary>
    public XtelemdbProcess StartCommandLine(IReadOnlyDictionary<string, string>? environment, IEnumerable<string> arguments) =>
        StartProgram(Executable, environment, arguments);

    /// <summary>The xtelemdb executable the tests run.</summary>
    public static string Executable => Path.Combine(AppContext.BaseDirectory, "xtelemdb");

    /// <summary>Runs a program (such as unshare, around xtelemdb); it is stopped with the test.</summary>
    public XtelemdbProcess StartProgram(string program, IReadOnlyDictionary<string, string>? environment, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true, // nobody answers a question
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        var running = new XtelemdbProcess(Process.Start(start)!);
        processes.Add(running.Process);
        return running;
    }

    /// <summary>Runs an xtelemdb command to its end; returns its exit code and everything it printed.</summary>
    public Task<(int ExitCode, string Output)> RunAsync(params string[] arguments) => RunAsync(null, arguments);

    public async Task<(int ExitCode, string Output)> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var run = StartProcess(environment, arguments);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await run.Process.WaitForExitAsync(timeout.Token);
        run.Process.WaitForExit(); // the output readers finish
        return (run.Process.ExitCode, run.Output);
    }

    public async Task<OriginRow?> OriginAsync(string path)
    {
        await using var connection = new NpgsqlConnection(Connection);
        return await connection.QuerySingleOrDefaultAsync<OriginRow>(
            "select origin_host, origin_path, mtime, size_bytes, missing_since from file_origins where origin_host = @Host and origin_path = @Path",
            new { Host, Path = path });
    }

    public async Task<ReplicaRow?> ReplicaAsync(string replicaUrl, string path, string host = Host)
    {
        await using var connection = new NpgsqlConnection(Connection);
        return await connection.QuerySingleOrDefaultAsync<ReplicaRow>("""
            select fr.origin_path, fr.mtime, fr.size_bytes, fr.replica_path, fr.checksum, fr.copied_at
              from file_replicas fr join replicas r on r.id = fr.replica_id
             where r.url = @Url and fr.origin_host = @Host and fr.origin_path = @Path
            """, new { Url = replicaUrl, Host = host, Path = path });
    }

    public async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(Connection);
        return await connection.ExecuteScalarAsync<long>(sql);
    }

    /// <summary>Waits until the replica's row records the file's current version on disk, and returns it.</summary>
    public Task<ReplicaRow> ReplicatedAsync(string replicaUrl, string path, TimeSpan? timeout = null, string host = Host) =>
        Eventually.Get(() => ReplicaAsync(replicaUrl, path, host),
            row => row is not null && row.SizeBytes == new FileInfo(path).Length && row.Mtime == Microseconds.Truncate(File.GetLastWriteTimeUtc(path)),
            timeout ?? TimeSpan.FromSeconds(30), $"{path} recorded on {replicaUrl} at its current version");

    public static string TargetOf(string replicaUrl, string path, string host = Host) => replicaUrl + "/" + host + path;

    public async ValueTask DisposeAsync()
    {
        foreach (var process in processes.Where(p => !p.HasExited))
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        foreach (var host in hosts.ToArray())
        {
            try
            {
                await host.StopAsync(TimeSpan.FromSeconds(10));
            }
            finally
            {
                host.Dispose();
            }
        }
        NpgsqlConnection.ClearAllPools();
        // An autovacuum worker in the database (a superuser's process) makes the force fail: a moment later it is gone.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = new NpgsqlConnection(TestServices.PostgresAdmin);
                await connection.ExecuteAsync($"drop database if exists {Name} with (force)");
                break;
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.ObjectInUse && attempt < 10)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
        await Management.DeleteVirtualHostAsync(Name);
        Management.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
