using Xtelemdb.Hosting.Selection;
using Tomlyn.Syntax;

namespace Xtelemdb.Hosting.Settings;

/// <summary>
/// Finds and reads the one TOML file: --config PATH, else ./xtelemdb.toml, else
/// /etc/xtelemdb/xtelemdb.toml, else built-in defaults. Every error names the file, the line and the key.
/// </summary>
public static class SettingsLoader
{
    public const string FileName = "xtelemdb.toml";
    public const string SystemPath = "/etc/xtelemdb/xtelemdb.toml";
    public const string Defaults = "built-in defaults";

    public static XtelemdbSettings Load(string? explicitPath = null)
    {
        var path = Locate(explicitPath);
        if (path is null)
            return Parse("", Defaults, Environment.CurrentDirectory);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SettingsException($"{path}: cannot read the configuration file: {e.Message}");
        }
        return Parse(text, path, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public static string? Locate(string? explicitPath)
    {
        if (explicitPath is not null)
            return File.Exists(explicitPath) ? explicitPath : throw new SettingsException($"{explicitPath}: the configuration file does not exist");
        var local = Path.Combine(Environment.CurrentDirectory, FileName);
        if (File.Exists(local))
            return local;
        return File.Exists(SystemPath) ? SystemPath : null;
    }

    /// <param name="baseDirectory">Relative paths in the file are relative to the file's folder.</param>
    public static XtelemdbSettings Parse(string text, string source, string baseDirectory)
    {
        var (tables, entries) = TomlEntries.Read(text, source);
        var reader = new Reader(source, baseDirectory);

        foreach (var table in tables)
        {
            if (table.Name is not (["database"] or ["broker"] or ["watch"] or ["replicator"] or ["monitoring"] or ["replicas"] or ["replicas", _] or ["origins"] or ["origins", _]))
                throw reader.Error(table.Line, $"[{TomlEntries.Format(table.Name)}]", "unknown table; expected [database], [broker], [watch], [replicator], [monitoring], [replicas.\"URL\"] or [origins.\"HOST\"]");
        }

        string host = Environment.MachineName;
        string connection = DatabaseSettings.DefaultConnection;
        Uri brokerUri = BrokerSettings.DefaultUri;
        IReadOnlyList<BrokerNode> brokerNodes = [];
        var queueType = QueueType.Classic;
        IReadOnlyList<string> roots = WatchSettings.DefaultRoots;
        TimeSpan poll = TimeSpan.FromMinutes(5), settle = TimeSpan.FromSeconds(2), maxInterval = TimeSpan.FromMinutes(1);
        int concurrency = 8;
        var copyTimeout = ReplicatorSettings.DefaultCopyTimeout;
        System.Net.IPEndPoint? listen = null;
        var logFormat = LogFormat.Text;
        var replicaTables = tables.Where(t => t.Name is ["replicas", _]).ToDictionary(t => t.Name[1], t => (t.Line, Entries: new List<TomlEntry>()));
        var origins = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var table in tables.Where(t => t.Name is ["origins", _]))
        {
            if (!IsHostName(table.Name[1]))
                throw reader.Error(table.Line, $"[origins.\"{table.Name[1]}\"]", "expected a host name, such as [origins.\"rtc\"]");
        }

        foreach (var e in entries)
        {
            switch (e.Table, e.Key)
            {
                case ([], "host"):
                    host = reader.String(e);
                    if (!IsHostName(host))
                        throw reader.Error(e, $"expected a host name, got \"{host}\"");
                    break;
                case (["database"], "connection"):
                    connection = reader.String(e);
                    if (NamesPassword(connection, out var parseError))
                        throw reader.Error(e, "no password in the file: set the PGPASSWORD environment variable");
                    if (parseError is not null)
                        throw reader.Error(e, $"not a connection string such as \"{DatabaseSettings.DefaultConnection}\": {parseError}");
                    break;
                case (["broker"], "uri"):
                    brokerUri = reader.BrokerUri(e);
                    break;
                case (["broker"], "nodes"):
                    brokerNodes = reader.Strings(e).Select(node => BrokerNode.TryParse(node, out var parsed)
                        ? parsed
                        : throw reader.Error(e, $"expected nodes as host:port, such as [\"rmq1:5672\", \"rmq2:5672\"], got \"{node}\"")).ToArray();
                    break;
                case (["broker"], "queue_type"):
                    queueType = reader.OneOf(e, "\"classic\" (one node) or \"quorum\" (a cluster)", ("classic", QueueType.Classic), ("quorum", QueueType.Quorum));
                    break;
                case (["watch"], "roots"):
                    roots = reader.Strings(e).Select(reader.FullPath).ToArray();
                    break;
                case (["watch"], "poll_interval"):
                    poll = reader.Duration(e);
                    break;
                case (["watch"], "settle"):
                    settle = reader.Duration(e);
                    break;
                case (["watch"], "max_interval"):
                    maxInterval = reader.Duration(e);
                    break;
                case (["replicator"], "concurrency"):
                    concurrency = (int)reader.Integer(e, 1, 256);
                    break;
                case (["replicator"], "copy_timeout"):
                    copyTimeout = reader.Duration(e);
                    break;
                case (["monitoring"], "listen"):
                    listen = reader.Listen(e);
                    break;
                case (["monitoring"], "log_format"):
                    logFormat = reader.OneOf(e, "\"text\" or \"json\"", ("text", LogFormat.Text), ("json", LogFormat.Json));
                    break;
                case (["replicas", var url], _) when replicaTables.TryGetValue(url, out var table):
                    table.Entries.Add(e);
                    break;
                case (["origins", var originHost], "mount"):
                    var mount = reader.FullPath(reader.String(e));
                    if (!Directory.Exists(mount))
                        throw reader.Error(e, $"the mount {mount} of {originHost}'s files does not exist");
                    origins[originHost] = mount;
                    break;
                default:
                    throw reader.Error(e, "unknown key" + KnownKeys(e.Table));
            }
        }
        if (settle > maxInterval)
            throw new SettingsException($"{source}: [watch] settle ({settle}) must not be longer than max_interval ({maxInterval})");

        if (origins.ContainsKey(host))
            throw new SettingsException($"{source}: [origins.\"{host}\"] names this machine's own host, whose files are read where they are");
        var replicas = replicaTables.Select(r => reader.Replica(r.Key, r.Value.Line, r.Value.Entries, host)).ToArray();
        var duplicate = replicas.GroupBy(r => r.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new SettingsException($"{source}: two [replicas] tables name the same replica {duplicate.Key}");

        return new XtelemdbSettings
        {
            Source = source,
            Host = host,
            Database = new DatabaseSettings(connection),
            Broker = new BrokerSettings(brokerUri) { ClusterNodes = brokerNodes, QueueType = queueType },
            Watch = new WatchSettings(roots, poll, settle, maxInterval),
            Replicator = new ReplicatorSettings(concurrency, copyTimeout),
            Monitoring = new MonitoringSettings(listen, logFormat),
            Replicas = replicas,
            Origins = origins,
        };
    }

    /// <summary>Parsed, not searched: Npgsql also reads a password from "Pwd" and "PSW".</summary>
    static bool NamesPassword(string connection, out string? error)
    {
        error = null;
        try
        {
            var keys = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connection }.Keys.Cast<string>();
            return keys.Any(key => key.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant() is "password" or "pwd" or "psw");
        }
        catch (ArgumentException e)
        {
            error = e.Message;
            return false;
        }
    }

    static bool IsHostName(string host) => host.Length > 0 && !host.Contains('/') && !host.Contains(':') && host is not ("." or "..");

    static string KnownKeys(IReadOnlyList<string> table) => table switch
    {
        [] => "; expected host, or a table such as [watch]",
        ["database"] => "; expected connection",
        ["broker"] => "; expected uri, nodes or queue_type",
        ["watch"] => "; expected roots, poll_interval, settle or max_interval",
        ["replicator"] => "; expected concurrency or copy_timeout",
        ["monitoring"] => "; expected listen or log_format",
        ["replicas", _] => "; expected local, enabled, hosts, include, exclude, fixity_period, fixity_rate, and for ssh:// replicas user, port, identity_file, known_hosts, passphrase_env, concurrency, connections or bandwidth_limit",
        ["origins", _] => "; expected mount",
        _ => "",
    };

    /// <summary>Typed reads of one entry; each failure names the file, line and key.</summary>
    sealed class Reader(string source, string baseDirectory)
    {
        public SettingsException Error(TomlEntry e, string message) => Error(e.Line, e.Name, message);

        public SettingsException Error(int line, string name, string message) => new($"{source}:{line}: {name}: {message}");

        public string String(TomlEntry e) =>
            e.Value is StringValueSyntax s ? s.Value! : throw Error(e, $"expected a string, got {Describe(e.Value)}");

        /// <summary>One of a few words, each meaning a value; the error says which words are allowed.</summary>
        public T OneOf<T>(TomlEntry e, string expected, params (string Word, T Value)[] choices)
        {
            var text = String(e);
            return choices.FirstOrDefault(c => c.Word == text) is { Word: not null } choice
                ? choice.Value
                : throw Error(e, $"expected {expected}, got \"{text}\"");
        }

        public bool Boolean(TomlEntry e) =>
            e.Value is BooleanValueSyntax b ? b.Value : throw Error(e, $"expected true or false, got {Describe(e.Value)}");

        public long Integer(TomlEntry e, long min, long max) => e.Value is IntegerValueSyntax i
            ? i.Value >= min && i.Value <= max ? i.Value : throw Error(e, $"expected a number from {min} to {max}, got {i.Value}")
            : throw Error(e, $"expected a whole number, got {Describe(e.Value)}");

        public IReadOnlyList<string> Strings(TomlEntry e)
        {
            if (e.Value is not ArraySyntax array)
                throw Error(e, $"expected an array of strings such as [\"/opt/MagAOX/telem\"], got {Describe(e.Value)}");
            return array.Items.Select(item => item.Value is StringValueSyntax s && s.Value!.Length > 0
                ? s.Value
                : throw Error(e, $"expected only non-empty strings in the array, got {Describe(item.Value)}")).ToArray();
        }

        public TimeSpan Duration(TomlEntry e)
        {
            var text = String(e);
            return Durations.TryParse(text, out var value) && value > TimeSpan.Zero
                ? value
                : throw Error(e, $"expected a duration such as \"250ms\", \"2s\", \"5m\" or \"1h\", got \"{text}\"");
        }

        /// <summary>"30d", "12h"; "off" checks nothing.</summary>
        public TimeSpan? FixityPeriod(TomlEntry e)
        {
            var text = String(e);
            if (text == "off")
                return null;
            return Durations.TryParse(text, out var value) && value > TimeSpan.Zero
                ? value
                : throw Error(e, $"expected a duration such as \"30d\" or \"12h\", or \"off\", got \"{text}\"");
        }

        public Uri BrokerUri(TomlEntry e)
        {
            var text = String(e);
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps"))
                throw Error(e, $"expected a URI such as \"amqp://127.0.0.1:5672/\", got \"{text}\"");
            if (uri.UserInfo.Contains(':'))
                throw Error(e, "no password in the file: set XTELEMDB_BROKER_USER and XTELEMDB_BROKER_PASSWORD");
            return uri;
        }

        public System.Net.IPEndPoint Listen(TomlEntry e)
        {
            var text = String(e);
            return MonitoringSettings.TryParseListen(text, out var endpoint)
                ? endpoint
                : throw Error(e, $"expected an address and port such as \"127.0.0.1:9400\" or \"0.0.0.0:9401\", got \"{text}\"");
        }

        public string FullPath(string path) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(path, baseDirectory));

        public ReplicaSettings Replica(string url, int line, IReadOnlyList<TomlEntry> entries, string thisHost)
        {
            var name = $"[replicas.\"{url}\"]";
            bool enabled = true;
            IReadOnlyList<string>? hosts = null;
            IReadOnlyList<string> include = [], exclude = [];
            bool? local = null;
            var ssh = ReplicaUrls.IsSsh(url);
            SshReplicaSettings? sshSettings = null;
            var fixity = FixitySettings.DefaultFor(ssh);
            if (ssh)
            {
                if (!SshUrl.TryParse(url, out var parsed, out var error))
                    throw Error(line, name, error);
                sshSettings = new SshReplicaSettings(parsed);
            }
            foreach (var e in entries)
            {
                switch (e.Key, ssh)
                {
                    case ("enabled", _): enabled = Boolean(e); break;
                    case ("local", _): local = Boolean(e); break;
                    case ("hosts", _): hosts = Strings(e); break;
                    case ("include", _): include = Strings(e); break;
                    case ("exclude", _): exclude = Strings(e); break;
                    case ("fixity_period", _): fixity = fixity with { Period = FixityPeriod(e) }; break;
                    case ("fixity_rate", _): fixity = fixity with { Rate = Bandwidth(e) }; break;
                    case ("user", true): sshSettings = sshSettings! with { User = String(e) }; break;
                    case ("port", true): sshSettings = sshSettings! with { Port = (int)Integer(e, 1, 65535) }; break;
                    case ("identity_file", true): sshSettings = sshSettings! with { IdentityFile = HomePath(String(e)) }; break;
                    case ("known_hosts", true): sshSettings = sshSettings! with { KnownHosts = HomePath(String(e)) }; break;
                    case ("passphrase_env", true): sshSettings = sshSettings! with { PassphraseEnv = String(e) }; break;
                    case ("concurrency", true): sshSettings = sshSettings! with { Concurrency = (int)Integer(e, 1, 1024) }; break;
                    case ("connections", true): sshSettings = sshSettings! with { Connections = (int)Integer(e, 1, 64) }; break;
                    case ("bandwidth_limit", true): sshSettings = sshSettings! with { BandwidthLimit = Bandwidth(e) }; break;
                    case ("user" or "port" or "identity_file" or "known_hosts" or "passphrase_env" or "concurrency" or "connections" or "bandwidth_limit", false):
                        throw Error(e, "only an ssh:// replica takes this key");
                    default:
                        throw Error(e, "unknown key" + KnownKeys(e.Table));
                }
            }
            ReplicaSelection selection;
            try
            {
                selection = new ReplicaSelection(hosts, include, exclude);
            }
            catch (ArgumentException e)
            {
                throw Error(line, name, e.Message);
            }
            if (ssh)
            {
                if (local == true)
                    throw Error(line, name, "an ssh:// replica cannot be local = true");
                return new ReplicaSettings(ReplicaUrls.Normalize(url), sshSettings!.Url.Path, enabled, sshSettings.Url.Host) { Ssh = sshSettings, Selection = selection, Fixity = fixity };
            }
            if (url.Contains("://", StringComparison.Ordinal))
                throw Error(line, name, "expected a local folder such as \"/mnt/backup\" or an ssh://host/path URL");
            if (local == false)
                throw Error(line, name, "local = false needs an ssh://host/path URL");
            var prefix = FullPath(url);
            if (!Directory.Exists(prefix))
                throw Error(line, name, $"the replica folder {prefix} does not exist");
            return new ReplicaSettings(prefix, prefix, enabled, thisHost) { Selection = selection, Fixity = fixity };
        }

        /// <summary>"~/.ssh/id_ed25519" as OpenSSH reads it; other relative paths are relative to the file.</summary>
        public string HomePath(string path) => path.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[2..])
            : FullPath(path);

        /// <summary>"50MB/s", "10MiB/s", "800KB/s", a number of bytes per second, or a timetable ("08:00,20MB/s 20:00,off").</summary>
        public BandwidthSchedule Bandwidth(TomlEntry e)
        {
            if (e.Value is IntegerValueSyntax { Value: > 0 } bytes)
                return BandwidthSchedule.Fixed(bytes.Value);
            try
            {
                return BandwidthSchedule.Parse(String(e));
            }
            catch (FormatException bad)
            {
                throw Error(e, $"expected a rate such as \"50MB/s\", or a timetable such as \"08:00,20MB/s 20:00,off\": {bad.Message}");
            }
        }

        static string Describe(ValueSyntax? value) => value switch
        {
            StringValueSyntax s => $"the string \"{s.Value}\"",
            IntegerValueSyntax i => $"the number {i.Value}",
            BooleanValueSyntax b => b.Value ? "true" : "false",
            ArraySyntax => "an array",
            null => "nothing",
            _ => value.ToString()?.Trim() ?? "a value of another type",
        };
    }
}
