using Renci.SshNet;
using Renci.SshNet.Common;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>Opens SFTP sessions that trust only host keys the operator accepted in known_hosts.</summary>
public static class SftpConnector
{
    public static async Task<SftpClient> ConnectAsync(SshEndpoint endpoint, CancellationToken cancellationToken)
    {
        var keys = LoadKeys(endpoint);
        var info = new ConnectionInfo(endpoint.HostName, endpoint.Port, endpoint.User, new PrivateKeyAuthenticationMethod(endpoint.User, keys))
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
        PreferHardwareCiphers(info);
        var client = new SftpClient(info)
        {
            OperationTimeout = TimeSpan.FromMinutes(2),
            KeepAliveInterval = TimeSpan.FromSeconds(30),
            // Fewer, larger write requests; OpenSSH's server takes up to 256 KiB in one.
            BufferSize = 64 * 1024,
        };
        string? refusal = null;
        // SSH.NET trusts every host key unless told otherwise.
        client.HostKeyReceived += (_, key) =>
        {
            var type = KeyType(key.HostKeyName);
            var status = Check(endpoint, type, key.HostKey);
            key.CanTrust = status == HostKeyStatus.Known;
            if (!key.CanTrust)
                refusal = Refusal(endpoint, status, type, key.HostKey);
        };
        try
        {
            await client.ConnectAsync(cancellationToken);
            return client;
        }
        catch (Exception e) when (e is SshException or System.Net.Sockets.SocketException or TimeoutException)
        {
            client.Dispose();
            if (refusal is not null)
                throw new SshReplicaException(refusal, e);
            if (e is SshAuthenticationException)
                throw new SshReplicaException($"{endpoint} refused the key {string.Join(", ", endpoint.IdentityFiles.Where(File.Exists))}: {e.Message}", e);
            throw new IOException($"cannot reach {endpoint}: {e.Message}", e);
        }
    }

    /// <summary>The host key, fetched without trusting it: what trust_host shows the operator.</summary>
    public static async Task<(string Type, byte[] Key)> FetchHostKeyAsync(string host, int port, CancellationToken cancellationToken)
    {
        using var client = new SshClient(new ConnectionInfo(host, port, "xtelemdb-trust-host", new NoneAuthenticationMethod("xtelemdb-trust-host")));
        (string, byte[])? seen = null;
        client.HostKeyReceived += (_, key) =>
        {
            seen = (KeyType(key.HostKeyName), key.HostKey);
            key.CanTrust = false;
        };
        try
        {
            await client.ConnectAsync(cancellationToken);
        }
        catch (SshException) when (seen is not null)
        {
        }
        return seen ?? throw new IOException($"{host}:{port} sent no host key");
    }

    static HostKeyStatus Check(SshEndpoint endpoint, string type, byte[] key)
    {
        // known_hosts may name the host as the operator does (popeye) or by its HostName.
        var byName = KnownHosts.Check(endpoint.KnownHostsFiles, endpoint.HostName, endpoint.Port, type, key);
        return byName == HostKeyStatus.Known || endpoint.Alias == endpoint.HostName
            ? byName
            : KnownHosts.Check(endpoint.KnownHostsFiles, endpoint.Alias, endpoint.Port, type, key) is var byAlias && byAlias != HostKeyStatus.Unknown ? byAlias : byName;
    }

    static string Refusal(SshEndpoint endpoint, HostKeyStatus status, string type, byte[] key)
    {
        var host = endpoint.Port == 22 ? endpoint.HostName : $"[{endpoint.HostName}]:{endpoint.Port}";
        var files = string.Join(", ", endpoint.KnownHostsFiles);
        var fingerprint = KnownHosts.Fingerprint(key);
        return status switch
        {
            HostKeyStatus.Changed => $"the host key of {host} CHANGED: it now sends {type} {fingerprint}, which {files} does not list for it; nothing was copied. If the change is expected, replace its line in {files}",
            HostKeyStatus.Revoked => $"the host key of {host} ({type} {fingerprint}) is revoked in {files}; nothing was copied",
            _ => $"the host key of {host} is unknown: {type} {fingerprint} is not in {files}; nothing was copied. Accept it with 'xtelemdb trust_host host={endpoint.Alias}' or ssh-keyscan",
        };
    }

    /// <summary>
    /// AES-GCM first: .NET runs it on the processor's AES instructions, where SSH.NET's CTR modes
    /// and MACs cost more CPU on a 2-core host that also runs sshd (bench/ measures it).
    /// </summary>
    static void PreferHardwareCiphers(ConnectionInfo info)
    {
        var preferred = new[] { "aes128-gcm@openssh.com", "aes256-gcm@openssh.com" };
        var ordered = preferred.Where(info.Encryptions.ContainsKey).Select(name => KeyValuePair.Create(name, info.Encryptions[name]))
            .Concat(info.Encryptions.Where(e => !preferred.Contains(e.Key))).ToArray();
        info.Encryptions.Clear();
        foreach (var (name, cipher) in ordered)
            info.Encryptions.Add(name, cipher);
    }

    /// <summary>RSA keys sign with rsa-sha2-256/512 but are listed as ssh-rsa.</summary>
    static string KeyType(string algorithm) => algorithm.StartsWith("rsa-sha2-", StringComparison.Ordinal) ? "ssh-rsa" : algorithm;

    static PrivateKeyFile[] LoadKeys(SshEndpoint endpoint)
    {
        var passphrase = endpoint.PassphraseEnv is { } variable
            ? Environment.GetEnvironmentVariable(variable) ?? throw new SshReplicaException($"the passphrase of the key for {endpoint} is to come from ${variable}, which is not set")
            : null;
        var keys = new List<PrivateKeyFile>();
        foreach (var file in endpoint.IdentityFiles.Where(File.Exists))
        {
            try
            {
                keys.Add(new PrivateKeyFile(file, passphrase));
            }
            catch (SshException e)
            {
                throw new SshReplicaException($"cannot read the key {file} for {endpoint}: {e.Message}", e);
            }
        }
        return keys.Count > 0 ? [.. keys]
            : throw new SshReplicaException($"no key to log in to {endpoint}: none of {string.Join(", ", endpoint.IdentityFiles)} exists");
    }
}
