using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Tests.Unit;

public sealed class SettingsTests
{
    string folder = null!;

    [SetUp]
    public void CreateFolder()
    {
        folder = Path.Combine(Path.GetTempPath(), "xt-settings-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(folder, "backup"));
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    XtelemdbSettings Parse(string toml) => SettingsLoader.Parse(toml, "/etc/xtelemdb/test.toml", folder);

    string ErrorOf(string toml) => Assert.Throws<SettingsException>(() => Parse(toml))!.Message;

    [Test]
    public void When_there_is_no_file_Should_use_the_defaults_of_the_design()
    {
        var settings = SettingsLoader.Parse("", SettingsLoader.Defaults, folder);
        Assert.Multiple(() =>
        {
            Assert.That(settings.Host, Is.EqualTo(Environment.MachineName));
            Assert.That(settings.Database.Connection, Is.EqualTo("Host=127.0.0.1;Port=5432;Database=xtelem;Username=xtelem"));
            Assert.That(settings.Broker.Uri, Is.EqualTo(new Uri("amqp://127.0.0.1:5672/")));
            Assert.That(settings.Watch.Roots, Is.EqualTo(new[] { "/opt/MagAOX/rawimages", "/opt/MagAOX/telem", "/opt/MagAOX/logs" }));
            Assert.That(settings.Watch.PollInterval, Is.EqualTo(TimeSpan.FromMinutes(5)));
            Assert.That(settings.Watch.Settle, Is.EqualTo(TimeSpan.FromSeconds(2)));
            Assert.That(settings.Watch.MaxInterval, Is.EqualTo(TimeSpan.FromMinutes(1)));
            Assert.That(settings.Monitoring.Listen, Is.Null, "no port is opened unless asked");
            Assert.That(settings.Monitoring.LogFormat, Is.EqualTo(LogFormat.Text));
            Assert.That(settings.Replicas, Is.Empty);
        });
    }

    [Test]
    public void When_every_key_is_given_Should_read_each_and_resolve_paths_against_the_file()
    {
        var settings = Parse("""
            host = "exao1"
            [database]
            connection = "Host=db;Database=xtelem;Username=xtelem"
            [broker]
            uri = "amqp://broker:5672/magaox"
            [watch]
            roots = ["/opt/MagAOX/telem", "data"]
            poll_interval = "1h30m"
            settle = "250ms"
            max_interval = "30s"
            [replicator]
            concurrency = 8
            copy_timeout = "2h"
            [monitoring]
            listen = "0.0.0.0:9401"
            log_format = "json"
            [replicas."backup/"]
            local = true
            enabled = false
            """);
        Assert.Multiple(() =>
        {
            Assert.That(settings.Host, Is.EqualTo("exao1"));
            Assert.That(settings.Broker.Uri.AbsolutePath, Is.EqualTo("/magaox"));
            Assert.That(settings.Watch.Roots, Is.EqualTo(new[] { "/opt/MagAOX/telem", Path.Combine(folder, "data") }));
            Assert.That(settings.Watch.PollInterval, Is.EqualTo(TimeSpan.FromMinutes(90)));
            Assert.That(settings.Watch.Settle, Is.EqualTo(TimeSpan.FromMilliseconds(250)));
            Assert.That(settings.Replicator.Concurrency, Is.EqualTo(8));
            Assert.That(settings.Replicator.CopyTimeout, Is.EqualTo(TimeSpan.FromHours(2)));
            Assert.That(settings.Monitoring.Listen, Is.EqualTo(System.Net.IPEndPoint.Parse("0.0.0.0:9401")));
            Assert.That(settings.Monitoring.LogFormat, Is.EqualTo(LogFormat.Json));
            Assert.That(settings.Replicas, Has.Count.EqualTo(1));
            Assert.That(settings.Replicas[0].Url, Is.EqualTo(Path.Combine(folder, "backup")));
            Assert.That(settings.Replicas[0].Enabled, Is.False);
        });
    }

    [Test]
    public void When_a_cluster_is_named_Should_connect_to_the_uris_node_first_then_each_other_node_once()
    {
        var settings = Parse("""
            [broker]
            uri = "amqp://rmq1:5672/magaox"
            nodes = ["rmq1:5672", "rmq2:5672", "10.0.0.3:5673"]
            queue_type = "quorum"
            """);
        Assert.Multiple(() =>
        {
            Assert.That(settings.Broker.Nodes.Select(n => n.ToString()), Is.EqualTo(new[] { "rmq1:5672", "rmq2:5672", "10.0.0.3:5673" }));
            Assert.That(settings.Broker.QueueType, Is.EqualTo(QueueType.Quorum));
            Assert.That(settings.Broker.VirtualHost, Is.EqualTo("magaox"));
        });
    }

    [Test]
    public void When_no_cluster_is_named_Should_use_the_uris_node_and_classic_queues()
    {
        var settings = Parse("[broker]\nuri = \"amqp://broker/\"");
        Assert.Multiple(() =>
        {
            Assert.That(settings.Broker.Nodes, Is.EqualTo(new[] { new BrokerNode("broker", 5672) }));
            Assert.That(settings.Broker.QueueType, Is.EqualTo(QueueType.Classic));
        });
    }

    [TestCase("[watch]\nsetle = \"2s\"", "/etc/xtelemdb/test.toml:2: [watch] setle: unknown key; expected roots, poll_interval, settle or max_interval")]
    [TestCase("\n\n[watch]\nsettle = 2", "/etc/xtelemdb/test.toml:4: [watch] settle: expected a string, got the number 2")]
    [TestCase("[watch]\nsettle = \"two seconds\"", "/etc/xtelemdb/test.toml:2: [watch] settle: expected a duration such as \"250ms\", \"2s\", \"5m\" or \"1h\", got \"two seconds\"")]
    [TestCase("[watch]\nroots = \"/opt\"", "/etc/xtelemdb/test.toml:2: [watch] roots: expected an array of strings")]
    [TestCase("[broker]\nuri = \"http://broker/\"", "/etc/xtelemdb/test.toml:2: [broker] uri: expected a URI such as \"amqp://127.0.0.1:5672/\", got \"http://broker/\"")]
    [TestCase("[broker]\nuri = \"amqp://user:secret@broker/\"", "[broker] uri: no password in the file")]
    [TestCase("[broker]\nqueue_type = \"mirrored\"", "/etc/xtelemdb/test.toml:2: [broker] queue_type: expected \"classic\" (one node) or \"quorum\" (a cluster), got \"mirrored\"")]
    [TestCase("[broker]\nqueue_type = 1", "/etc/xtelemdb/test.toml:2: [broker] queue_type: expected a string, got the number 1")]
    [TestCase("[broker]\nnodes = [\"rmq1:5672\", \"rmq2\"]", "/etc/xtelemdb/test.toml:2: [broker] nodes: expected nodes as host:port, such as [\"rmq1:5672\", \"rmq2:5672\"], got \"rmq2\"")]
    [TestCase("[broker]\nnodes = [\"rmq1:99999\"]", "[broker] nodes: expected nodes as host:port, such as [\"rmq1:5672\", \"rmq2:5672\"], got \"rmq1:99999\"")]
    [TestCase("[broker]\nnodes = [\"amqp://rmq1:5672\"]", "[broker] nodes: expected nodes as host:port, such as [\"rmq1:5672\", \"rmq2:5672\"], got \"amqp://rmq1:5672\"")]
    [TestCase("[broker]\nnodes = [\"[fd00::3]:5672\"]", "[broker] nodes: expected nodes as host:port, such as [\"rmq1:5672\", \"rmq2:5672\"], got \"[fd00::3]:5672\"")]
    [TestCase("[broker]\nnodes = \"rmq1:5672\"", "/etc/xtelemdb/test.toml:2: [broker] nodes: expected an array of strings")]
    [TestCase("[database]\nconnection = \"Host=db;Password=secret\"", "/etc/xtelemdb/test.toml:2: [database] connection: no password in the file: set the PGPASSWORD environment variable")]
    [TestCase("[database]\nconnection = \"Host=db;Pwd=secret\"", "[database] connection: no password in the file")]
    [TestCase("[database]\nconnection = \"Host=db; PSW = secret\"", "[database] connection: no password in the file")]
    [TestCase("[database]\nconnection = \"Host=db;Pass Word=secret\"", "[database] connection: no password in the file")]
    [TestCase("[database]\nconnection = \"Host=db;Username\"", "[database] connection: not a connection string such as")]
    [TestCase("[replicator]\nconcurrency = 0", "[replicator] concurrency: expected a number from 1 to 256, got 0")]
    [TestCase("host = \"a/b\"", "/etc/xtelemdb/test.toml:1: host: expected a host name")]
    [TestCase("[replica.\"/mnt/backup\"]", "/etc/xtelemdb/test.toml:1: [replica.\"/mnt/backup\"]: unknown table")]
    [TestCase("[replicas.\"/no/such/folder\"]\nlocal = true", "/etc/xtelemdb/test.toml:1: [replicas.\"/no/such/folder\"]: the replica folder /no/such/folder does not exist")]
    [TestCase("[replicas.\"s3://bucket/x\"]", "[replicas.\"s3://bucket/x\"]: expected a local folder such as \"/mnt/backup\" or an ssh://host/path URL")]
    [TestCase("[replicas.\"backup\"]\nlocal = \"yes\"", "/etc/xtelemdb/test.toml:2: [replicas.backup] local: expected true or false, got the string \"yes\"")]
    [TestCase("[watch]\nsettle = \"2m\"\nmax_interval = \"1m\"", "[watch] settle (00:02:00) must not be longer than max_interval (00:01:00)")]
    [TestCase("[monitoring]\nlisten = \"9400\"", "/etc/xtelemdb/test.toml:2: [monitoring] listen: expected an address and port such as \"127.0.0.1:9400\" or \"0.0.0.0:9401\", got \"9400\"")]
    [TestCase("[monitoring]\nlog_format = \"xml\"", "/etc/xtelemdb/test.toml:2: [monitoring] log_format: expected \"text\" or \"json\", got \"xml\"")]
    [TestCase("[monitoring]\nport = 9400", "/etc/xtelemdb/test.toml:2: [monitoring] port: unknown key; expected listen or log_format")]
    [TestCase("[watch\nsettle = \"2s\"", "/etc/xtelemdb/test.toml:1: not valid TOML")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nbandwidth_limit = \"08:00,20MB/s 25:00,off\"", "/etc/xtelemdb/test.toml:2: [replicas.\"ssh://popeye/ceph\"] bandwidth_limit: expected a rate such as \"50MB/s\", or a timetable such as \"08:00,20MB/s 20:00,off\": \"25:00,off\": 25:00 is not a time of day")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nbandwidth_limit = \"08:00,fast\"", "bandwidth_limit: expected a rate such as \"50MB/s\", or a timetable such as \"08:00,20MB/s 20:00,off\": \"fast\" is not a rate")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nbandwidth_limit = \"Funday-08:00,1M\"", "\"Funday-08:00,1M\": Funday is not a day")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nbandwidth_limit = \"08:00,1M 08:00,off\"", "names the time Sunday 08:00 twice")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nbandwidth_limit = \" \"", "bandwidth_limit: expected a rate such as \"50MB/s\", or a timetable such as \"08:00,20MB/s 20:00,off\": it is empty")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nbandwidth_limit = \"0MB/s\"", "\"0MB/s\" is not a rate above zero; \"off\" means no limit")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nconnections = 0", "[replicas.\"ssh://popeye/ceph\"] connections: expected a number from 1 to 64, got 0")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nfixity_period = \"monthly\"", "[replicas.\"ssh://popeye/ceph\"] fixity_period: expected a duration such as \"30d\" or \"12h\", or \"off\", got \"monthly\"")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nfixity_period = 30", "[replicas.\"ssh://popeye/ceph\"] fixity_period: expected a string")]
    [TestCase("[replicas.\"ssh://popeye/ceph\"]\nfixity_rate = \"quick\"", "fixity_rate: expected a rate such as \"50MB/s\"")]
    public void When_the_file_is_wrong_Should_name_the_file_line_and_key(string toml, string expected) =>
        Assert.That(ErrorOf(toml), Does.Contain(expected));

    [Test]
    public void When_an_explicit_file_is_missing_Should_say_so()
    {
        var missing = Path.Combine(folder, "nope.toml");
        var error = Assert.Throws<SettingsException>(() => SettingsLoader.Load(missing))!;
        Assert.That(error.Message, Is.EqualTo($"{missing}: the configuration file does not exist"));
    }

    [Test]
    [NonParallelizable] // changes the process's current folder
    public void When_no_file_is_named_Should_take_the_one_in_the_current_folder_first()
    {
        File.WriteAllText(Path.Combine(folder, "xtelemdb.toml"), "host = \"from-cwd\"\n");
        var previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = folder;
        try
        {
            Assert.That(SettingsLoader.Load().Host, Is.EqualTo("from-cwd"));
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
    }

    [Test]
    public void When_the_other_hosts_files_of_deploy_are_read_Should_load_as_the_README_describes_them()
    {
        // The compose stack's file names its container's folders: ComposeStackTests runs it.
        var deploy = Path.Combine(Support.Repository.Root(), "deploy");
        var remote = Path.Combine(deploy, "xtelemdb.remote.toml");
        Assert.That(SettingsLoader.Parse(File.ReadAllText(remote), remote, folder).Host, Is.EqualTo("exao2"));

        var ha = Path.Combine(deploy, "xtelemdb.ha.toml");
        var settings = SettingsLoader.Parse(File.ReadAllText(ha), ha, folder);
        Assert.Multiple(() =>
        {
            Assert.That(settings.Broker.Nodes.Select(n => n.ToString()), Is.EqualTo(new[] { "exao1:5672", "exao2:5672", "backup-host:5672" }));
            Assert.That(settings.Broker.QueueType, Is.EqualTo(QueueType.Quorum));
            Assert.That(new Npgsql.NpgsqlConnectionStringBuilder(settings.Database.Connection).Host, Is.EqualTo("exao1,backup-host"));
        });
    }
}
