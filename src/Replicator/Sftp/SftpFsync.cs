using System.Reflection;
using Renci.SshNet;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// fsync@openssh.com: the server flushes an open file to its disk. SSH.NET (2026.0) implements the
/// extension's neighbour, fstatvfs@openssh.com, whose request carries the same body (a file
/// handle), but not fsync itself; so its request is built and renamed here and sent down the
/// session's own request path, reached by reflection. Looked up once: where SSH.NET's internals
/// differ (another version), <see cref="Available"/> is false and the replica says it is not
/// flushed, as it does for a server that does not offer the extension. A real OpenSSH server in
/// the tests sees the request arrive.
/// </summary>
static class SftpFsync
{
    public const string Extension = "fsync@openssh.com";

    static readonly Internals? internals = Internals.Find();

    /// <summary>Whether this SSH.NET can send the request at all.</summary>
    public static bool Available => internals is not null;

    /// <summary>Whether the server of this session offers fsync@openssh.com (and we can send it).</summary>
    public static bool OfferedBy(SftpClient client) =>
        internals?.Extensions(client)?.ContainsKey(Extension) == true;

    /// <summary>Flushes the file open behind the handle to the server's disk; throws when the server says it could not.</summary>
    public static void Flush(SftpClient client, byte[] handle, TimeSpan timeout)
    {
        var shim = internals ?? throw new NotSupportedException($"this SSH.NET cannot send {Extension}");
        var status = new StatusWaiter();
        try
        {
            var session = shim.Session.GetValue(client) ?? throw new IOException("the SFTP session is closed");
            var request = shim.NewRequest.Invoke([
                shim.ProtocolVersion.GetValue(session), shim.NextRequestId.GetValue(session), handle,
                Delegate.CreateDelegate(shim.ReplyAction, status, StatusWaiter.OnReplyMethod),
                Delegate.CreateDelegate(shim.StatusAction, status, StatusWaiter.OnStatusMethod),
            ]);
            shim.SetName.Invoke(request, [Extension]);
            shim.SendRequest.Invoke(session, [request]);
        }
        catch (TargetInvocationException e)
        {
            // An IOException, as every SFTP failure: the session is dropped and the copy retried, its message readable.
            throw new IOException($"{Extension} could not be sent: {e.InnerException?.Message ?? e.Message}", e.InnerException ?? e);
        }
        if (!status.Done.Wait(timeout))
            throw new IOException($"{Extension}: no answer within {timeout.TotalSeconds:0} s");
        if (status.Response is not { } response)
            throw new IOException($"{Extension}: an unexpected reply");
        var code = Convert.ToInt32(shim.StatusCode.GetValue(response));
        if (code != 0)
            throw new IOException($"{Extension} failed: {shim.ErrorMessage.GetValue(response)} (status {code})");
    }

    sealed class StatusWaiter
    {
        public static readonly MethodInfo OnStatusMethod = typeof(StatusWaiter).GetMethod(nameof(OnStatus))!;
        public static readonly MethodInfo OnReplyMethod = typeof(StatusWaiter).GetMethod(nameof(OnReply))!;

        public ManualResetEventSlim Done { get; } = new();
        public object? Response { get; private set; }

        public void OnStatus(object response)
        {
            Response = response;
            Done.Set();
        }

        public void OnReply(object response) => Done.Set();
    }

    sealed record Internals(FieldInfo Session, PropertyInfo ProtocolVersion, PropertyInfo NextRequestId, MethodInfo SendRequest,
        FieldInfo SupportedExtensions, ConstructorInfo NewRequest, MethodInfo SetName, Type ReplyAction, Type StatusAction,
        PropertyInfo StatusCode, PropertyInfo ErrorMessage)
    {
        const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

        public IDictionary<string, string>? Extensions(SftpClient client) =>
            Session.GetValue(client) is { } session ? SupportedExtensions.GetValue(session) as IDictionary<string, string> : null;

        public static Internals? Find()
        {
            try
            {
                var assembly = typeof(SftpClient).Assembly;
                var session = assembly.GetType("Renci.SshNet.Sftp.SftpSession", throwOnError: true)!;
                var request = assembly.GetType("Renci.SshNet.Sftp.Requests.FStatVfsRequest", throwOnError: true)!;
                var extended = assembly.GetType("Renci.SshNet.Sftp.Requests.SftpExtendedRequest", throwOnError: true)!;
                var reply = assembly.GetType("Renci.SshNet.Sftp.Responses.SftpExtendedReplyResponse", throwOnError: true)!;
                var status = assembly.GetType("Renci.SshNet.Sftp.Responses.SftpStatusResponse", throwOnError: true)!;
                var replyAction = typeof(Action<>).MakeGenericType(reply);
                var statusAction = typeof(Action<>).MakeGenericType(status);
                return new Internals(
                    typeof(SftpClient).GetField("_sftpSession", Instance)!,
                    session.GetProperty("ProtocolVersion", Instance)!,
                    session.GetProperty("NextRequestId", Instance)!,
                    session.GetMethod("SendRequest", Instance)!,
                    session.GetField("_supportedExtensions", Instance)!,
                    request.GetConstructor(Instance, [typeof(uint), typeof(uint), typeof(byte[]), replyAction, statusAction])!,
                    extended.GetProperty("Name", Instance)?.GetSetMethod(nonPublic: true)!,
                    replyAction, statusAction,
                    status.GetProperty("StatusCode", Instance)!,
                    status.GetProperty("ErrorMessage", Instance)!) is var found && found.AllFound() ? found : null;
            }
            catch (Exception)
            {
                // Whatever another SSH.NET's internals make of the lookup: no fsync, said so, never a failed copy.
                return null;
            }
        }

        bool AllFound() => Session is not null && ProtocolVersion is not null && NextRequestId is not null && SendRequest is not null
            && SupportedExtensions is not null && NewRequest is not null && SetName is not null && StatusCode is not null && ErrorMessage is not null;
    }
}
