using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>
/// A RabbitMQ node or PostgreSQL cluster of one test's own, on 127.0.0.1 and its own ports and
/// folders, so that the test may SIGKILL it and start it again on the same data without
/// touching the servers every other test shares. Needs Debian's rabbitmq-server and postgresql
/// (scripts/services installs them); where they are missing the test is ignored, saying so.
/// </summary>
public abstract class OwnServer : IAsyncDisposable
{
    Process? process;

    protected OwnServer(string root)
    {
        Root = root;
        Directory.CreateDirectory(root);
        Port = Ports.FreeLoopback();
    }

    public string Root { get; }
    public int Port { get; }

    protected abstract ProcessStartInfo StartInfo();
    protected abstract string Name { get; }

    public async Task StartAsync()
    {
        var start = StartInfo();
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Log(e.Data);
        process.ErrorDataReceived += (_, e) => Log(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await Eventually.True(async () =>
        {
            Assert.That(process.HasExited, Is.False, $"{Name} exited at start with code {(process.HasExited ? process.ExitCode : 0)}; its output is above");
            return await AcceptsAsync();
        }, TimeSpan.FromSeconds(90), $"{Name} on port {Port}");
    }

    /// <summary>SIGKILL to the server and every process it started: no shutdown, no flush.</summary>
    public async Task KillAsync()
    {
        process!.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        TestContext.Progress.WriteLine($"{Name} killed");
    }

    protected virtual async Task<bool> AcceptsAsync()
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    void Log(string? line)
    {
        if (line is not null)
            TestContext.Progress.WriteLine($"[{Name}] {line}");
    }

    protected static void RequireProgram(string path)
    {
        if (!File.Exists(path))
            Assert.Ignore($"{path} is missing: run scripts/services install (this fault test runs its own server)");
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (process is { HasExited: false })
            await KillAsync();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A RabbitMQ node with its own name, ports and database folder; guest may connect from loopback.</summary>
public sealed class OwnBroker : OwnServer
{
    const string Server = "/usr/sbin/rabbitmq-server";
    readonly string node = $"xtfault{Guid.NewGuid():N}"[..20] + "@localhost";
    readonly int distributionPort = Ports.FreeLoopback();

    /// <param name="managementPort">Where its management API listens; none when null.</param>
    public OwnBroker(string root, int? managementPort = null) : base(root)
    {
        RequireProgram(Server);
        ManagementPort = managementPort;
        File.WriteAllText(Path.Combine(root, "enabled_plugins"), managementPort is null ? "[].\n" : "[rabbitmq_management].\n");
        // The user and password the services read from the environment, as for the shared broker.
        File.WriteAllText(Path.Combine(root, "rabbitmq.conf"), $"""
            listeners.tcp.default = 127.0.0.1:{Port}
            loopback_users = none
            default_user = {Environment.GetEnvironmentVariable("XTELEMDB_BROKER_USER")}
            default_pass = {Environment.GetEnvironmentVariable("XTELEMDB_BROKER_PASSWORD")}

            """ + (managementPort is null ? "" : $"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {managementPort}\n"));
        // Debian's rabbitmq-server runs the node as the rabbitmq user.
        Shell.Run("chown", "-R", "rabbitmq", root);
    }

    public Uri Uri => new($"amqp://127.0.0.1:{Port}/");
    public int? ManagementPort { get; }

    /// <summary>The Erlang node name, for rabbitmqctl -n.</summary>
    public string Node => node;
    protected override string Name => "rabbitmq " + node;

    protected override ProcessStartInfo StartInfo()
    {
        var start = new ProcessStartInfo(Server);
        start.Environment["RABBITMQ_NODENAME"] = node;
        start.Environment["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1";
        start.Environment["RABBITMQ_NODE_PORT"] = Port.ToString();
        start.Environment["RABBITMQ_DIST_PORT"] = distributionPort.ToString();
        start.Environment["ERL_EPMD_ADDRESS"] = "127.0.0.1";
        start.Environment["RABBITMQ_CONFIG_FILE"] = Path.Combine(Root, "rabbitmq");
        start.Environment["RABBITMQ_ADVANCED_CONFIG_FILE"] = "/etc/rabbitmq/advanced.config";
        start.Environment["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(Root, "enabled_plugins");
        start.Environment["RABBITMQ_MNESIA_BASE"] = Path.Combine(Root, "mnesia");
        start.Environment["RABBITMQ_LOG_BASE"] = Path.Combine(Root, "log");
        return start;
    }
}

/// <summary>A PostgreSQL cluster of its own (initdb into the test's folder), run as the postgres user, trust on loopback.</summary>
public class OwnDatabase : OwnServer
{
    /// <summary>The newest PostgreSQL Debian installed (15 on bookworm, newer elsewhere).</summary>
    internal static readonly string Bin = Directory.Exists("/usr/lib/postgresql")
        ? Path.Combine(Directory.GetDirectories("/usr/lib/postgresql").MaxBy(v => int.TryParse(Path.GetFileName(v), out var n) ? n : 0) ?? "/usr/lib/postgresql/15", "bin")
        : "/usr/lib/postgresql/15/bin";

    readonly string[] settings;

    /// <param name="settings">More server settings ("name=value"), given on its command line.</param>
    public OwnDatabase(string root, params string[] settings) : this(root, settings, initialize: true)
    {
    }

    /// <param name="initialize">false: the data folder is made otherwise (a standby's, by pg_basebackup).</param>
    protected OwnDatabase(string root, string[] settings, bool initialize) : base(root)
    {
        this.settings = settings;
        RequireProgram(Path.Combine(Bin, "initdb"));
        Shell.Run("chown", "postgres", root);
        if (initialize)
            Shell.Run("runuser", "-u", "postgres", "--", Path.Combine(Bin, "initdb"), "-D", DataFolder, "-U", "xtelem", "--auth=trust", "-E", "UTF8", "--no-sync");
    }

    protected string DataFolder => Path.Combine(Root, "data");
    public string Connection => $"Host=127.0.0.1;Port={Port};Database=postgres;Username=xtelem";
    protected override string Name => $"postgres :{Port}";

    /// <summary>
    /// Ready when it answers a query: PostgreSQL accepts TCP connections while it still replays
    /// its WAL after a kill, and refuses them with 57P03 "the database system is starting up".
    /// </summary>
    protected override async Task<bool> AcceptsAsync()
    {
        try
        {
            await using var connection = new Npgsql.NpgsqlConnection(Connection + ";Pooling=false;Timeout=5");
            await connection.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand("select 1", connection);
            await command.ExecuteScalarAsync();
            return true;
        }
        catch (Npgsql.NpgsqlException)
        {
            return false;
        }
    }

    protected override ProcessStartInfo StartInfo() => new("runuser",
        ["-u", "postgres", "--", Path.Combine(Bin, "postgres"), "-D", DataFolder, "-p", Port.ToString(),
         "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={Root}", "-c", "max_connections=200",
         .. settings.SelectMany(setting => new[] { "-c", setting })]);
}
