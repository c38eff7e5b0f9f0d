using System.Buffers;
using System.Buffers.Binary;
using System.Collections;
using System.Reflection;
using System.Text;
using Renci.SshNet;
using Renci.SshNet.Common;
using Renci.SshNet.Sftp;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// SFTP requests that do not wait for each other, on one SSH.NET session. SSH.NET's public calls
/// wait for each reply and resolve every path first, so a copy cost a dozen round trips; over a
/// 150 ms link the round trips, not the bytes, were the cost. Here a copy sends its requests back to
/// back and awaits their replies together, and the copies sharing a session interleave theirs, as
/// OpenSSH's own sftp keeps many requests in flight.
///
/// SSH.NET's session still frames the messages and matches each reply to its request. Its
/// asynchronous request calls are internal, so they are reached by reflection, looked up once and
/// checked at start (<see cref="Check"/>); the requests it has no call for (fsetstat, fsync,
/// posix-rename, copy-data) are written here, their status reply received through a placeholder
/// request registered under their id. SSH.NET splits a message larger than the channel's packet or
/// window into several without a lock, so every send on the session goes through one lock here.
/// </summary>
sealed class SftpWire
{
    const byte FxpFSetStat = 10, FxpExtended = 200;
    const uint AttrAcModTime = 0x8;

    readonly object session;
    readonly SemaphoreSlim sending = new(1, 1);
    readonly CancellationTokenSource broken = new();
    readonly TimeSpan timeout;

    public SftpWire(SftpClient client, TimeSpan timeout)
    {
        Check();
        Client = client;
        this.timeout = timeout;
        // A connection that drops fails every request waiting on it at once (SSH.NET's own calls take
        // this token, raw ones are registered with it), not each at its timeout minutes later.
        client.ErrorOccurred += (_, _) => broken.Cancel();
        session = Internals.Session.GetValue(client) ?? throw new IOException("the SFTP session is closed");
        var extensions = Internals.Extensions.GetValue(session) as IDictionary<string, string>;
        Extensions = extensions is null ? [] : new HashSet<string>(extensions.Keys, StringComparer.Ordinal);
    }

    public SftpClient Client { get; }

    public enum Access
    {
        /// <summary>Read only.</summary>
        Read,
        /// <summary>Written from empty: created, or truncated.</summary>
        Create,
        /// <summary>Created, and refused if something is there already.</summary>
        CreateNew,
        /// <summary>Read and written as it is (a part file resumed).</summary>
        Update,
    }

    /// <summary>The extensions the server announced (posix-rename@openssh.com, fsync@openssh.com, copy-data…).</summary>
    public IReadOnlySet<string> Extensions { get; }

    /// <summary>False once a request failed in a way that may leave the session out of step: it is replaced.</summary>
    public bool Healthy => !broken.IsCancellationRequested && Client.IsConnected;


    /// <summary>Throws, naming what is missing, when this SSH.NET's internals are not those xtelemdb was built against.</summary>
    public static void Check()
    {
        try
        {
            _ = Internals.Session;
        }
        catch (TypeInitializationException e) when (e.InnerException is { } missing)
        {
            throw missing;
        }
    }

    // Each Send… call returns once its request is sent; the task it gives completes with the reply.
    // A copy sends several (write, fsetstat, fsync, close) and awaits their replies together: the
    // server handles one session's requests in the order sent.

    public Task<Task<byte[]>> SendOpen(string path, Access access, CancellationToken cancellationToken) =>
        Send<byte[]>(Internals.Open, cancellationToken, path, Internals.Flags(access));

    public Task<Task<object?>> SendClose(byte[] handle, CancellationToken cancellationToken) => Send<object?>(Internals.Close, cancellationToken, handle);

    public Task<Task<object?>> SendWrite(byte[] handle, long offset, byte[] data, int length, CancellationToken cancellationToken) =>
        Send<object?>(Internals.Write, cancellationToken, handle, (ulong)offset, data, 0, length);

    /// <summary>Up to <paramref name="length"/> bytes at <paramref name="offset"/>; fewer, or none, at the end of the file.</summary>
    public async Task<Task<byte[]>> SendRead(byte[] handle, long offset, int length, CancellationToken cancellationToken)
    {
        var reply = await Send<IMemoryOwner<byte>>(Internals.Read, cancellationToken, handle, (ulong)offset, (uint)length);
        return Copied(reply);

        // SSH.NET lends the bytes from a pool: copied out, and given back.
        static async Task<byte[]> Copied(Task<IMemoryOwner<byte>> reply)
        {
            using var owner = await reply;
            return owner.Memory.ToArray();
        }
    }

    /// <summary>The path itself, never what a symlink there points to; null where nothing is.</summary>
    public async Task<Task<SftpFileAttributes?>> SendLStat(string path, CancellationToken cancellationToken)
    {
        var reply = await Send<SftpFileAttributes>(Internals.LStat, cancellationToken, path);
        return NullWhereMissing(reply);

        static async Task<SftpFileAttributes?> NullWhereMissing(Task<SftpFileAttributes> reply)
        {
            try
            {
                return await reply;
            }
            catch (SftpPathNotFoundException)
            {
                return null;
            }
        }
    }

    /// <summary>The file's mtime (and atime), set on the open handle after its last write.</summary>
    public Task<Task<object?>> SendSetTimes(byte[] handle, DateTime mtimeUtc, CancellationToken cancellationToken)
    {
        var seconds = (uint)new DateTimeOffset(mtimeUtc, TimeSpan.Zero).ToUnixTimeSeconds();
        return SendRaw(FxpFSetStat, body => body.String(handle).UInt32(AttrAcModTime).UInt32(seconds).UInt32(seconds), cancellationToken);
    }

    /// <summary>fsync@openssh.com: the server flushes the open file to its disk.</summary>
    public Task<Task<object?>> SendFsync(byte[] handle, CancellationToken cancellationToken) =>
        SendRaw(FxpExtended, body => body.String(FsyncExtension).String(handle), cancellationToken);

    /// <summary>posix-rename@openssh.com: rename(2), which replaces the target atomically.</summary>
    public Task<Task<object?>> SendPosixRename(string from, string to, CancellationToken cancellationToken) =>
        SendRaw(FxpExtended, body => body.String(PosixRenameExtension).String(from).String(to), cancellationToken);

    /// <summary>copy-data: the server copies the first bytes of one open file into another itself; nothing crosses the link.</summary>
    public Task<Task<object?>> SendCopyData(byte[] from, long offset, long length, byte[] to, CancellationToken cancellationToken) =>
        SendRaw(FxpExtended, body => body.String(CopyDataExtension).String(from).UInt64((ulong)offset).UInt64((ulong)length).String(to).UInt64((ulong)offset), cancellationToken);

    public const string FsyncExtension = "fsync@openssh.com", PosixRenameExtension = "posix-rename@openssh.com", CopyDataExtension = "copy-data";

    public async Task<byte[]> OpenAsync(string path, Access access, CancellationToken cancellationToken) =>
        await await SendOpen(path, access, cancellationToken);

    public async Task CloseAsync(byte[] handle, CancellationToken cancellationToken) => await await SendClose(handle, cancellationToken);

    public async Task<SftpFileAttributes?> LStatAsync(string path, CancellationToken cancellationToken) => await await SendLStat(path, cancellationToken);

    public async Task<string> RealPathAsync(string path, CancellationToken cancellationToken) =>
        (await await Send<KeyValuePair<string, SftpFileAttributes>[]>(Internals.RealPath, cancellationToken, path, false))[0].Key;

    public Task<Task<object?>> SendMkDir(string path, CancellationToken cancellationToken) => Send<object?>(Internals.MkDir, cancellationToken, path);

    public async Task RemoveAsync(string path, CancellationToken cancellationToken) => await await SendRemove(path, cancellationToken);

    public Task<Task<object?>> SendRemove(string path, CancellationToken cancellationToken) => Send<object?>(Internals.Remove, cancellationToken, path);

    /// <summary>SFTP's own rename, which OpenSSH refuses over an existing file.</summary>
    public async Task RenameAsync(string from, string to, CancellationToken cancellationToken) => await await Send<object?>(Internals.Rename, cancellationToken, from, to);

    public async Task<IReadOnlyList<(string Name, SftpFileAttributes Attributes)>> ListAsync(string folder, CancellationToken cancellationToken)
    {
        var handle = await await Send<byte[]>(Internals.OpenDir, cancellationToken, folder);
        var entries = new List<(string, SftpFileAttributes)>();
        try
        {
            while (await await Send<KeyValuePair<string, SftpFileAttributes>[]?>(Internals.ReadDir, cancellationToken, handle) is { Length: > 0 } names)
                entries.AddRange(names.Select(n => (n.Key, n.Value)));
        }
        finally
        {
            await CloseAsync(handle, cancellationToken);
        }
        return entries;
    }

    /// <summary>Sends one of SSH.NET's requests under the send lock; the task returned completes with its reply.</summary>
    async Task<Task<T>> Send<T>(MethodInfo request, CancellationToken cancellationToken, params object?[] arguments)
    {
        Task reply;
        await sending.WaitAsync(cancellationToken);
        try
        {
            // SSH.NET sends the request before the call returns; the task it gives is the reply.
            reply = (Task)request.Invoke(session, [.. arguments, broken.Token])!;
        }
        catch (TargetInvocationException e)
        {
            throw Unsent(e.InnerException ?? e);
        }
        finally
        {
            sending.Release();
        }
        return Reply(reply, cancellationToken);

        async Task<T> Reply(Task reply, CancellationToken cancellationToken)
        {
            await Await(reply, cancellationToken);
            // SSH.NET completes its replies on the thread that reads the session: the copy goes on
            // elsewhere, since its next send may wait for a window adjustment only that thread can read.
            await Task.Yield();
            // Task<X> of SSH.NET's own X: its Result read by reflection, as X may be internal.
            var result = reply.GetType().GetProperty(nameof(Task<T>.Result))?.GetValue(reply);
            return result is T typed ? typed : result is null || typeof(T) == typeof(object) ? default! : throw new InvalidCastException(
                $"SSH.NET's {request.Name} answered {result.GetType().Name}, not {typeof(T).Name}");
        }
    }

    /// <summary>A request SSH.NET cannot build: its bytes written here, its status answered through a placeholder under its id.</summary>
    async Task<Task<object?>> SendRaw(byte type, Func<Body, Body> write, CancellationToken cancellationToken)
    {
        var status = new TaskCompletionSource<(uint Code, string Message)>(TaskCreationOptions.RunContinuationsAsynchronously);
        // A session that breaks answers nothing more: the wait ends with it, not at the timeout.
        var ended = broken.Token.Register(() => status.TrySetCanceled());
        _ = status.Task.ContinueWith(_ => ended.Dispose(), TaskScheduler.Default);
        await sending.WaitAsync(cancellationToken);
        try
        {
            var id = (uint)Internals.NextRequestId.GetValue(session)!;
            var packet = write(new Body(type, id)).Packet();
            var placeholder = Internals.Placeholder(session, id, status);
            var requests = (IDictionary)Internals.Requests.GetValue(session)!;
            lock (requests)
                requests.Add(id, placeholder);
            Internals.SendData.Invoke(session, [packet]);
        }
        catch (Exception e)
        {
            throw Unsent(e is TargetInvocationException { InnerException: { } inner } ? inner : e);
        }
        finally
        {
            sending.Release();
        }
        return Reply(status.Task, cancellationToken);

        async Task<object?> Reply(Task<(uint Code, string Message)> reply, CancellationToken cancellationToken)
        {
            await Await(reply, cancellationToken);
            var (code, message) = reply.Result;
            return code switch
            {
                0 => null,
                2 => throw new SftpPathNotFoundException(message),
                3 => throw new SftpPermissionDeniedException(message),
                8 => throw new NotSupportedException(message),
                _ => throw new SshException($"{message} (SFTP status {code})"),
            };
        }
    }

    /// <summary>
    /// A reply, within the session's operation timeout: a session whose server stopped answering is
    /// marked broken (its later replies would find no one waiting), and the copy fails to be retried.
    /// </summary>
    async Task Await(Task reply, CancellationToken cancellationToken)
    {
        try
        {
            await reply.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            broken.Cancel();
            throw new IOException($"no SFTP reply within {timeout.TotalSeconds:0} s");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException("the SFTP session was closed");
        }
        catch (Exception e) when (e is not OperationCanceledException && !Answered(e))
        {
            // A copy cancelled with requests in flight (copy_timeout, shutdown) leaves the session as it is: their replies find no one waiting.
            throw Failed(e);
        }
    }

    /// <summary>The server's answer to one request (no such file, refused, failed): the session itself is fine.</summary>
    static bool Answered(Exception e) =>
        e is SftpPathNotFoundException or SftpPermissionDeniedException or NotSupportedException
        || e is SshException and not (SshConnectionException or SshOperationTimeoutException);

    /// <summary>
    /// A send that failed may have left part of a message on the channel (SSH.NET gives up waiting
    /// for the window midway): whatever it was, the session is out of step and is not used again.
    /// </summary>
    Exception Unsent(Exception e)
    {
        if (e is OperationCanceledException)
            return e; // cancelled while waiting for the send lock: nothing was sent
        broken.Cancel();
        return e as IOException ?? new IOException($"an SFTP request could not be sent: {e.Message}", e);
    }

    Exception Failed(Exception e)
    {
        if (Answered(e))
            return e;
        broken.Cancel();
        return e as IOException ?? new IOException(e.Message, e);
    }

    /// <summary>An SFTP request's bytes: length, type, id, then the fields in network order.</summary>
    sealed class Body
    {
        readonly MemoryStream bytes = new();

        public Body(byte type, uint id)
        {
            UInt32(0); // the length, filled in by Packet
            bytes.WriteByte(type);
            UInt32(id);
        }

        public Body UInt32(uint value)
        {
            Span<byte> field = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(field, value);
            bytes.Write(field);
            return this;
        }

        public Body UInt64(ulong value)
        {
            Span<byte> field = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(field, value);
            bytes.Write(field);
            return this;
        }

        public Body String(byte[] value)
        {
            UInt32((uint)value.Length);
            bytes.Write(value);
            return this;
        }

        public Body String(string value) => String(Encoding.UTF8.GetBytes(value));

        public byte[] Packet()
        {
            var packet = bytes.ToArray();
            BinaryPrimitives.WriteUInt32BigEndian(packet, (uint)(packet.Length - 4));
            return packet;
        }
    }

    /// <summary>SSH.NET's internals this class uses, looked up once.</summary>
    static class Internals
    {
        const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        static readonly Assembly assembly = typeof(SftpClient).Assembly;
        static readonly Type sessionType = Type("Renci.SshNet.Sftp.SftpSession");
        static readonly Type flagsType = Type("Renci.SshNet.Sftp.Flags");
        static readonly Type statusType = Type("Renci.SshNet.Sftp.Responses.SftpStatusResponse");
        static readonly ConstructorInfo closeRequest = Type("Renci.SshNet.Sftp.Requests.SftpCloseRequest")
            .GetConstructor(Instance, [typeof(uint), typeof(uint), typeof(byte[]), typeof(Action<>).MakeGenericType(statusType)])
            ?? throw Missing("SftpCloseRequest(uint, uint, byte[], Action<SftpStatusResponse>)");
        static readonly PropertyInfo statusCode = Property(statusType, "StatusCode");
        static readonly PropertyInfo errorMessage = Property(statusType, "ErrorMessage");
        static readonly PropertyInfo protocolVersion = Property(sessionType, "ProtocolVersion");

        public static readonly FieldInfo Session = Field(typeof(SftpClient), "_sftpSession");
        public static readonly FieldInfo Extensions = Field(sessionType, "_supportedExtensions");
        public static readonly FieldInfo Requests = Field(sessionType, "_requests");
        public static readonly PropertyInfo NextRequestId = Property(sessionType, "NextRequestId");
        public static readonly MethodInfo SendData = sessionType.GetMethod("SendData", Instance, [typeof(byte[])]) ?? throw Missing("SubsystemSession.SendData(byte[])");
        public static readonly MethodInfo Open = Method("RequestOpenAsync", typeof(string), flagsType, typeof(CancellationToken));
        public static readonly MethodInfo Close = Method("RequestCloseAsync", typeof(byte[]), typeof(CancellationToken));
        public static readonly MethodInfo Write = Method("RequestWriteAsync", typeof(byte[]), typeof(ulong), typeof(byte[]), typeof(int), typeof(int), typeof(CancellationToken));
        public static readonly MethodInfo Read = Method("RequestReadAsync", typeof(byte[]), typeof(ulong), typeof(uint), typeof(CancellationToken));
        public static readonly MethodInfo LStat = Method("RequestLStatAsync", typeof(string), typeof(CancellationToken));
        public static readonly MethodInfo RealPath = Method("RequestRealPathAsync", typeof(string), typeof(bool), typeof(CancellationToken));
        public static readonly MethodInfo MkDir = Method("RequestMkDirAsync", typeof(string), typeof(CancellationToken));
        public static readonly MethodInfo Remove = Method("RequestRemoveAsync", typeof(string), typeof(CancellationToken));
        public static readonly MethodInfo Rename = Method("RequestRenameAsync", typeof(string), typeof(string), typeof(CancellationToken));
        public static readonly MethodInfo OpenDir = Method("RequestOpenDirAsync", typeof(string), typeof(CancellationToken));
        public static readonly MethodInfo ReadDir = Method("RequestReadDirAsync", typeof(byte[]), typeof(CancellationToken));

        /// <summary>SSH.NET's Flags: Read 1, Write 2, CreateNewOrOpen 8, Truncate 16.</summary>
        public static object Flags(Access access) => Enum.ToObject(flagsType, access switch
        {
            Access.Read => 1,
            Access.Create => 2 | 8 | 16,
            Access.CreateNew => 2 | 8 | 32,
            _ => 1 | 2,
        });

        /// <summary>A request that is never sent: it stands in the session's table for a raw one, and hands on its status.</summary>
        public static object Placeholder(object session, uint id, TaskCompletionSource<(uint, string)> status)
        {
            var forward = new StatusForward(status);
            var action = Delegate.CreateDelegate(typeof(Action<>).MakeGenericType(statusType), forward, StatusForward.OnStatusMethod);
            return closeRequest.Invoke([protocolVersion.GetValue(session), id, Array.Empty<byte>(), action]);
        }

        sealed class StatusForward(TaskCompletionSource<(uint, string)> status)
        {
            public static readonly MethodInfo OnStatusMethod = typeof(StatusForward).GetMethod(nameof(OnStatus))!;

            public void OnStatus(object response) =>
                status.TrySetResult((Convert.ToUInt32(statusCode.GetValue(response)), errorMessage.GetValue(response) as string ?? ""));
        }

        static Type Type(string name) => assembly.GetType(name) ?? throw Missing(name);

        static FieldInfo Field(Type type, string name) => type.GetField(name, Instance) ?? throw Missing($"{type.Name}.{name}");

        static PropertyInfo Property(Type type, string name) => type.GetProperty(name, Instance) ?? throw Missing($"{type.Name}.{name}");

        static MethodInfo Method(string name, params Type[] parameters) =>
            sessionType.GetMethod(name, Instance, parameters) is { } method && typeof(Task).IsAssignableFrom(method.ReturnType)
                ? method : throw Missing($"SftpSession.{name}");

        static InvalidOperationException Missing(string what) =>
            new($"this SSH.NET ({assembly.GetName().Version}) lacks {what}, which xtelemdb's pipelined SFTP uses: build with the SSH.NET version in Directory.Packages.props");
    }
}
