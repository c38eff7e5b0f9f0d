using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// Where and as whom to log in for an SFTP replica: the URL first, then its TOML table, then
/// ~/.ssh/config, then OpenSSH's defaults (port 22, ~/.ssh/id_ed25519, id_ecdsa, id_rsa, ~/.ssh/known_hosts).
/// </summary>
public sealed record SshEndpoint(string Alias, string HostName, int Port, string User, IReadOnlyList<string> IdentityFiles,
    IReadOnlyList<string> KnownHostsFiles, string? PassphraseEnv)
{
    static string SshFolder => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh");

    public static SshEndpoint Resolve(SshReplicaSettings settings, string? sshConfigPath = null)
    {
        var url = settings.Url;
        var config = SshConfigFile.Resolve(url.Host, sshConfigPath);
        IReadOnlyList<string> identities = settings.IdentityFile is { } file ? [file]
            : config.IdentityFiles.Count > 0 ? config.IdentityFiles
            : new[] { "id_ed25519", "id_ecdsa", "id_rsa" }.Select(name => Path.Combine(SshFolder, name)).ToArray();
        return new SshEndpoint(
            url.Host,
            config.HostName ?? url.Host,
            url.Port ?? settings.Port ?? config.Port ?? 22,
            url.User ?? settings.User ?? config.User ?? Environment.UserName,
            identities,
            [settings.KnownHosts ?? config.KnownHostsFile ?? KnownHosts.DefaultPath],
            settings.PassphraseEnv);
    }

    public override string ToString() => $"{User}@{HostName}:{Port}";
}
