using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Xtelemdb.Tests.Real;

/// <summary>RabbitMQ's management HTTP API: the calls the management UI makes when an operator clicks.</summary>
public sealed class Management : IDisposable
{
    readonly HttpClient http;

    public Management(Uri baseUri, string user, string password)
    {
        http = new HttpClient { BaseAddress = new Uri(baseUri, "api/") };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{password}")));
    }

    static string E(string segment) => Uri.EscapeDataString(segment);

    public async Task CreateVirtualHostAsync(string vhost, string user)
    {
        (await http.PutAsync($"vhosts/{E(vhost)}", null)).EnsureSuccessStatusCode();
        (await http.PutAsJsonAsync($"permissions/{E(vhost)}/{E(user)}", new { configure = ".*", write = ".*", read = ".*" })).EnsureSuccessStatusCode();
    }

    public async Task DeleteVirtualHostAsync(string vhost) => await http.DeleteAsync($"vhosts/{E(vhost)}");

    /// <summary>Publishes a body as typed into the UI's "Publish message" form, with no MassTransit envelope.</summary>
    public async Task PublishAsync(string vhost, string exchange, string routingKey, string payload, IDictionary<string, object>? properties = null)
    {
        var response = await http.PostAsJsonAsync($"exchanges/{E(vhost)}/{E(exchange)}/publish", new
        {
            properties = properties ?? new Dictionary<string, object>(),
            routing_key = routingKey,
            payload,
            payload_encoding = "string",
        });
        response.EnsureSuccessStatusCode();
        var routed = (await response.Content.ReadFromJsonAsync<JsonObject>())!["routed"]!.GetValue<bool>();
        if (!routed)
            throw new InvalidOperationException($"the message to exchange \"{exchange}\" was not routed to any queue");
    }

    /// <summary>Why a message in an error queue failed: MassTransit's MT-Fault-Message header, as PeekAsync reads it.</summary>
    public static string FaultReason(JsonObject message) => message["properties"]!["headers"]!["MT-Fault-Message"]!.GetValue<string>();

    /// <summary>Reads up to <paramref name="count"/> messages of a queue and puts them back (the UI's "Get messages").</summary>
    public async Task<IReadOnlyList<JsonObject>> PeekAsync(string vhost, string queue, int count = 10)
    {
        var response = await http.PostAsJsonAsync($"queues/{E(vhost)}/{E(queue)}/get",
            new { count, ackmode = "ack_requeue_true", encoding = "auto", truncate = 50000 });
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
            return [];
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonArray>())!.Select(m => m!.AsObject()).ToArray();
    }

    /// <summary>The copy requests waiting in a replicate queue, one per file: a ReplicasNeeded list gives each of its files.</summary>
    public async Task<IReadOnlyList<JsonNode>> QueuedRequestsAsync(string vhost, string queue) =>
        (await PeekAsync(vhost, queue, 100))
            .Select(m => JsonNode.Parse(m["payload"]!.GetValue<string>())!["message"]!)
            .SelectMany(message => message["files"] is JsonArray files ? files.Select(f => f!) : [message])
            .ToArray();

    /// <summary>The prefetch count of each consumer of a queue (the management UI's queue page).</summary>
    public async Task<IReadOnlyList<int>> PrefetchCountsAsync(string vhost, string queue)
    {
        var consumers = await http.GetFromJsonAsync<JsonArray>($"consumers/{E(vhost)}");
        return consumers!.Select(c => c!.AsObject())
            .Where(c => c["queue"]?["name"]?.GetValue<string>() == queue)
            .Select(c => c["prefetch_count"]!.GetValue<int>()).ToArray();
    }

    /// <summary>Every queue of a virtual host as the management UI's Queues tab lists it: name, arguments, consumers, messages.</summary>
    public async Task<IReadOnlyList<JsonObject>> QueuesAsync(string vhost) =>
        (await http.GetFromJsonAsync<JsonArray>($"queues/{E(vhost)}"))!.Select(q => q!.AsObject()).ToArray();

    /// <summary>Empties a queue, as if its messages were lost in flight.</summary>
    public async Task PurgeAsync(string vhost, string queue) =>
        (await http.DeleteAsync($"queues/{E(vhost)}/{E(queue)}/contents")).EnsureSuccessStatusCode();

    /// <summary>Deletes a queue, as an operator does with the management UI's "Delete Queue".</summary>
    public async Task DeleteQueueAsync(string vhost, string queue) =>
        (await http.DeleteAsync($"queues/{E(vhost)}/{E(queue)}")).EnsureSuccessStatusCode();



    public void Dispose() => http.Dispose();
}
