using System.Diagnostics;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Sftp;

namespace Xtelemdb.Tests.Unit;

public sealed class SshTests
{
    string folder = null!;

    [SetUp]
    public void CreateFolder()
    {
        folder = Path.Combine(Path.GetTempPath(), "xt-ssh-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    (string Type, byte[] Key) NewKey(string name)
    {
        using (var keygen = Process.Start("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(folder, name)]))
            keygen.WaitForExit();
        var fields = File.ReadAllText(Path.Combine(folder, name + ".pub")).Split(' ');
        return (fields[0], Convert.FromBase64String(fields[1]));
    }

    [Test]
    public void When_known_hosts_is_hashed_by_ssh_keygen_Should_still_know_the_host_and_see_a_changed_key()
    {
        var (type, key) = NewKey("a");
        var (_, other) = NewKey("b");
        var file = Path.Combine(folder, "known_hosts");
        File.WriteAllText(file, KnownHosts.Line("popeye.example.org", 22, type, key) + "\n" + KnownHosts.Line("127.0.0.1", 2222, type, key) + "\n");
        using (var hash = Process.Start("ssh-keygen", ["-H", "-f", file]))
            hash.WaitForExit();
        Assert.That(File.ReadAllText(file), Does.StartWith("|1|"), "the names are hashed");

        Assert.That(KnownHosts.Check([file], "popeye.example.org", 22, type, key), Is.EqualTo(HostKeyStatus.Known));
        Assert.That(KnownHosts.Check([file], "127.0.0.1", 2222, type, key), Is.EqualTo(HostKeyStatus.Known));
        Assert.That(KnownHosts.Check([file], "127.0.0.1", 22, type, key), Is.EqualTo(HostKeyStatus.Unknown), "another port is another host");
        Assert.That(KnownHosts.Check([file], "popeye.example.org", 22, type, other), Is.EqualTo(HostKeyStatus.Changed));
        Assert.That(KnownHosts.Check([file], "elsewhere", 22, type, key), Is.EqualTo(HostKeyStatus.Unknown));
    }

    [Test]
    public void When_a_key_is_revoked_Should_say_so()
    {
        var (type, key) = NewKey("a");
        var file = Path.Combine(folder, "known_hosts");
        File.WriteAllText(file, "@revoked " + KnownHosts.Line("popeye", 22, type, key) + "\n" + KnownHosts.Line("popeye", 22, type, key) + "\n");
        Assert.That(KnownHosts.Check([file], "popeye", 22, type, key), Is.EqualTo(HostKeyStatus.Revoked));
    }

    [Test]
    public void When_ssh_config_names_a_host_Should_resolve_it_as_OpenSSH_does()
    {
        var config = Path.Combine(folder, "config");
        File.WriteAllText(config, """
            # the first value of each key wins
            Host popeye popeye-*
                HostName popeye.example.org
                User backup
                Port 2222
                IdentityFile ~/.ssh/id_popeye
            Host !popeye-test *
                User nobody
                IdentityFile ~/.ssh/id_any
            """);
        var popeye = SshConfigFile.Resolve("popeye", config);
        Assert.That((popeye.HostName, popeye.User, popeye.Port), Is.EqualTo(("popeye.example.org", "backup", (int?)2222)));
        Assert.That(popeye.IdentityFiles.Select(Path.GetFileName), Is.EqualTo(new[] { "id_popeye", "id_any" }), "identity files accumulate");
        var test = SshConfigFile.Resolve("popeye-test", config);
        Assert.That(test.User, Is.EqualTo("backup"));
        Assert.That(test.IdentityFiles.Select(Path.GetFileName), Is.EqualTo(new[] { "id_popeye" }), "a negated pattern excludes the block");
        var other = SshConfigFile.Resolve("olive", config);
        Assert.That((other.HostName, other.User, other.Port), Is.EqualTo(((string?)null, "nobody", (int?)null)));
    }

    [TestCase("ssh://popeye/ceph/magao-x/", null, "popeye", null, "ceph/magao-x")]
    [TestCase("ssh://backup@popeye:2222//data/backup", "backup", "popeye", 2222, "/data/backup")]
    public void When_an_ssh_url_is_read_Should_give_user_host_port_and_path(string url, string? user, string host, int? port, string path)
    {
        Assert.That(SshUrl.TryParse(url, out var parsed, out var error), Is.True, error);
        Assert.That(parsed, Is.EqualTo(new SshUrl(user, host, port, path)));
    }

    [TestCase("ssh://popeye", "expected a host and a path")]
    [TestCase("ssh://popeye:port/x", "not a port number")]
    [TestCase("ssh://popeye/a/../../etc", "without \"..\"")]
    public void When_an_ssh_url_is_bad_Should_say_why(string url, string reason)
    {
        Assert.That(SshUrl.TryParse(url, out _, out var error), Is.False);
        Assert.That(error, Does.Contain(reason));
    }
}
