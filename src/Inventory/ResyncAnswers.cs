using System.Text.Json;
using MassTransit;
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

    /// <summary>Counts and sends the answer. A failure to send it is logged, never thrown: the resync itself is done (or safe in its error queue).</summary>
    public async Task SendAsync(ReceiveContext request, ResyncCompleted answer, CancellationToken cancellationToken)
    {
        PipelineMetrics.Resyncs.Add(1, new KeyValuePair<string, object?>("outcome", answer.Outcome));
        try
        {
            // The queue, its length limit and its binding exist before the first answer is sent to its exchange.
            await labels.SendReportAsync(request.SendEndpointProvider, Queues.ResyncResults, answer, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "Could not answer a resync in {Queue}: {Answer}", Queues.ResyncResults, answer);
        }
    }

    /// <summary>A resync that failed for good, now in resync-requested_error: logged and answered.</summary>
    public async Task RefuseAsync(ExceptionReceiveContext context)
    {
        var reason = ReasonOf(context.Exception);
        logger.LogWarning("Resync refused: {Reason}; the request is in {Queue}", reason, Queues.ResyncRequested + Queues.ErrorSuffix);
        await SendAsync(context, new ResyncCompleted
        {
            Outcome = ResyncCompleted.Refused,
            Request = BodyOf(context),
            Reason = reason,
            At = DateTime.UtcNow,
        }, context.CancellationToken);
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
            await answers.RefuseAsync(context);
            await next.Send(context);
        }

        public void Probe(ProbeContext context) => context.CreateFilterScope("resyncRefusal");
    }
}
