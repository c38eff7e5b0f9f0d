using System.Text.Json;
using MassTransit;
using MassTransit.Serialization;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;

namespace Xtelemdb.Inventory;

/// <summary>
/// Answers each resync in the bounded queue resync-results, as plain JSON that the management UI's
/// "Get messages" shows as it is, so that "Message published." is followed by what it came to.
/// </summary>
public sealed class ResyncAnswers(QueueLabels labels, ILogger<ResyncAnswers> logger)
{
    const int RequestShown = 2000;
    static readonly IMessageSerializer PlainJson = new SystemTextJsonRawMessageSerializer(RawSerializerOptions.Default);

    ILogger Logger => logger;

    public async Task SendAsync(ReceiveContext request, ResyncCompleted answer, CancellationToken cancellationToken)
    {
        PipelineMetrics.Resyncs.Add(1, new KeyValuePair<string, object?>("outcome", answer.Outcome));
        // The queue, its length limit and its binding exist before the first answer is sent to its exchange.
        await labels.EnsureAsync([Queues.ResyncResults], cancellationToken);
        var endpoint = await request.SendEndpointProvider.GetSendEndpoint(new Uri($"exchange:{Queues.ResyncResults}"));
        await endpoint.Send(answer, context => context.Serializer = PlainJson, cancellationToken);
    }

    /// <summary>The body as published, or for a request sent through MassTransit (xtelemdb resync) its message.</summary>
    public static string BodyOf(ReceiveContext request)
    {
        var body = request.Body.GetString();
        if (request.ContentType?.MediaType?.Contains("masstransit", StringComparison.OrdinalIgnoreCase) == true)
        {
            try
            {
                using var envelope = JsonDocument.Parse(body);
                if (envelope.RootElement.TryGetProperty("message", out var message))
                    body = message.GetRawText();
            }
            catch (JsonException)
            {
            }
        }
        return body.Length <= RequestShown ? body : body[..RequestShown] + "…";
    }

    /// <summary>Why a resync failed, as the MT-Fault-Message header of its copy in resync-requested_error says it.</summary>
    public static string ReasonOf(Exception exception)
    {
        var cause = exception.GetBaseException();
        return cause is JsonException
            ? $"{cause.Message} (a resync is a JSON object with the optional text fields replica, originHost and pathPrefix)"
            : cause.Message;
    }

    /// <summary>In the resync queue's error pipe, after the request was moved to resync-requested_error: the refusal.</summary>
    public sealed class RefusalFilter(ResyncAnswers answers) : IFilter<ExceptionReceiveContext>
    {
        public async Task Send(ExceptionReceiveContext context, IPipe<ExceptionReceiveContext> next)
        {
            var reason = ReasonOf(context.Exception);
            answers.Logger.LogWarning("Resync refused: {Reason}; the request is in {Queue}", reason, Queues.ResyncRequested + Queues.ErrorSuffix);
            try
            {
                await answers.SendAsync(context, new ResyncCompleted
                {
                    Outcome = ResyncCompleted.Refused,
                    Request = BodyOf(context),
                    Reason = reason,
                    At = DateTime.UtcNow,
                }, context.CancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The request itself is safe in the error queue; only its answer is lost.
                answers.Logger.LogWarning(e, "Could not answer a refused resync in {Queue}", Queues.ResyncResults);
            }
            await next.Send(context);
        }

        public void Probe(ProbeContext context) => context.CreateFilterScope("resyncRefusal");
    }
}
