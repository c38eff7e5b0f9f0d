using System.Diagnostics;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using NpgsqlTypes;
using Xtelemdb;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Storage;

// Each command prints one line "name value unit" per figure, for bench/bench.py to collect.
var settings = SettingsLoader.Load(args.SkipWhile(a => a != "--config").Skip(1).FirstOrDefault());
return args[0] switch
{
    "ingest" => await Ingest(int.Parse(args[1]), args.Length > 2 && int.TryParse(args[2], out var perList) ? perList : 1),
    "copy-ceiling" => await CopyCeiling(int.Parse(args[1])),
    "drain-ceiling" => await DrainCeiling(int.Parse(args[1])),
    "copy-engine" => await CopyEngine(args[1], args[2]),
    "first-request" => await FirstRequest(args[1], args[2].Split(',')),
    _ => throw new ArgumentException($"unknown command {args[0]}"),
};

// FileChanged sent to the inventory's queue with publisher confirms: one per message, as an operator or
// another tool would send them, or in FilesChanged lists, as a watcher does.
async Task<int> Ingest(int count, int perList)
{
    var services = new ServiceCollection().AddLogging().AddPipelineBus(settings).BuildServiceProvider();
    var bus = services.GetRequiredService<IBusControl>();
    await bus.StartAsync();
    var now = DateTime.UtcNow;
    var messages = Enumerable.Range(0, count).Select(i => new FileChanged
    {
        Host = "bench", Path = $"/opt/MagAOX/telem/d{i % 100}/f{i}.bintel", Mtime = now, Size = i, ObservedAt = now,
    }).ToArray();
    var inventory = await bus.GetSendEndpoint(new Uri($"queue:{Queues.FileChanged}"));
    var clock = Stopwatch.StartNew();
    foreach (var chunk in messages.Chunk(1000))
    {
        if (perList == 1)
            await inventory.SendBatch(chunk);
        else
            await inventory.SendBatch(chunk.Chunk(perList).Select(list => new FilesChanged { Files = list }));
    }
    Console.WriteLine($"send_rate {count / clock.Elapsed.TotalSeconds:0} msg/s");
    await bus.StopAsync();
    return 0;
}

// The practical ceiling: the same rows by binary COPY into a table shaped like file_origins.
async Task<int> CopyCeiling(int count)
{
    await using var source = InventoryDatabase.CreateDataSource(settings.Database);
    await using var connection = await source.OpenConnectionAsync();
    await using (var create = new NpgsqlCommand("create temp table ceiling (like file_origins including all)", connection))
        await create.ExecuteNonQueryAsync();
    var now = DateTime.UtcNow;
    var clock = Stopwatch.StartNew();
    await using (var writer = await connection.BeginBinaryImportAsync("copy ceiling (origin_host, origin_path, mtime, size_bytes, observed_at) from stdin (format binary)"))
    {
        for (var i = 0; i < count; i++)
        {
            await writer.StartRowAsync();
            await writer.WriteAsync("bench", NpgsqlDbType.Text);
            await writer.WriteAsync($"/opt/MagAOX/telem/d{i % 100}/f{i}.bintel", NpgsqlDbType.Text);
            await writer.WriteAsync(now, NpgsqlDbType.TimestampTz);
            await writer.WriteAsync((long)i, NpgsqlDbType.Bigint);
            await writer.WriteAsync(now, NpgsqlDbType.TimestampTz);
        }
        await writer.CompleteAsync();
    }
    Console.WriteLine($"copy_rate {count / clock.Elapsed.TotalSeconds:0} rows/s");
    return 0;
}

// The broker's ceiling: the inventory's queue drained by a bare RabbitMQ.Client consumer that acks
// each message on arrival, with the inventory's prefetch. No deserialisation, no database.
async Task<int> DrainCeiling(int count)
{
    var factory = new RabbitMQ.Client.ConnectionFactory { Uri = settings.Broker.Uri, UserName = settings.Broker.User, Password = settings.Broker.Password };
    await using var connection = await factory.CreateConnectionAsync();
    await using var channel = await connection.CreateChannelAsync();
    await channel.BasicQosAsync(0, (ushort)(Xtelemdb.Inventory.Consumers.UpsertOriginsConsumerDefinition.BatchLimit * 2), false);
    var received = 0;
    var done = new TaskCompletionSource();
    var consumer = new RabbitMQ.Client.Events.AsyncEventingBasicConsumer(channel);
    consumer.ReceivedAsync += async (_, delivery) =>
    {
        await channel.BasicAckAsync(delivery.DeliveryTag, false);
        if (++received == count)
            done.TrySetResult();
    };
    var clock = Stopwatch.StartNew();
    await channel.BasicConsumeAsync(Queues.FileChanged, false, "", false, false, null, consumer);
    await done.Task;
    Console.WriteLine($"drain_rate {count / clock.Elapsed.TotalSeconds:0} msg/s");
    return 0;
}

// A resync of one replica, published as an operator does in the management UI (plain JSON to its
// exchange), timed to the first copy request it sends to any of the replica's (origin host) queues: a
// queue of this command's own is bound to their exchanges, which are declared as MassTransit declares them.
async Task<int> FirstRequest(string replica, string[] originHosts)
{
    var factory = new RabbitMQ.Client.ConnectionFactory { Uri = settings.Broker.Uri, UserName = settings.Broker.User, Password = settings.Broker.Password };
    await using var connection = await factory.CreateConnectionAsync();
    await using var channel = await connection.CreateChannelAsync();
    var queue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true)).QueueName;
    foreach (var host in originHosts)
    {
        var exchange = Queues.Replicate(host, replica);
        await channel.ExchangeDeclareAsync(exchange, "fanout", durable: true, autoDelete: false);
        await channel.QueueBindAsync(queue, exchange, "");
    }
    var first = new TaskCompletionSource<TimeSpan>();
    var clock = new Stopwatch();
    var consumer = new RabbitMQ.Client.Events.AsyncEventingBasicConsumer(channel);
    consumer.ReceivedAsync += (_, _) =>
    {
        first.TrySetResult(clock.Elapsed);
        return Task.CompletedTask;
    };
    await channel.BasicConsumeAsync(queue, true, "", false, false, null, consumer);
    var body = System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new { replica }));
    clock.Start();
    await channel.BasicPublishAsync(Queues.ResyncExchange, "", true, new RabbitMQ.Client.BasicProperties { ContentType = "application/json" }, body);
    var elapsed = await first.Task.WaitAsync(TimeSpan.FromMinutes(10));
    Console.WriteLine($"first_request {elapsed.TotalSeconds:0.000} s");
    return 0;
}

// The copy engine alone, without messages or database: every file of a folder to a replica of the
// TOML file (local or ssh://), as many at once as the replicator would copy.
async Task<int> CopyEngine(string folder, string url)
{
    var replica = settings.Replicas.Single(r => r.Url == ReplicaUrls.Normalize(url));
    using var factory = new ReplicaTargetFactory(settings);
    var target = factory.For(replica);
    var files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories);
    long bytes = 0;
    var clock = Stopwatch.StartNew();
    // As many at once as the replicator copies of a list: on a local replica they are made durable together.
    var filesAtOnce = Xtelemdb.Replicator.Consumers.CopyFilesConsumer.FilesAtOnce(replica, settings);
    await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = filesAtOnce }, async (file, cancellationToken) =>
    {
        var path = await target.PathForAsync("bench", file, cancellationToken);
        // A copy cut by a failure is tried again, as the replicator's retry does: a cut transfer resumes.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var copied = await target.CopyAsync(file, path, held: null, progress: null, cancellationToken) ?? throw new InvalidOperationException($"{file} changed");
                Interlocked.Add(ref bytes, copied.Version.Size);
                return;
            }
            catch (IOException e) when (attempt < 5)
            {
                Console.Error.WriteLine($"attempt {attempt} at {file} failed ({e.Message}); again");
            }
        }
    });
    Console.WriteLine($"files_per_second {files.Length / clock.Elapsed.TotalSeconds:0.0} files/s");
    Console.WriteLine($"megabytes_per_second {bytes / 1e6 / clock.Elapsed.TotalSeconds:0.0} MB/s");
    return 0;
}
