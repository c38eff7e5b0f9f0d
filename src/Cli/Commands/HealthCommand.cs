using System.CommandLine;

namespace Xtelemdb.Cli.Commands;

/// <summary>
/// Asks a running service for its /health: the container healthcheck, without curl in the image.
/// </summary>
public static class HealthCommand
{
    public static Command Create()
    {
        var address = new Argument<string>("address") { Description = "The service's --listen address, such as 127.0.0.1:9401" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for an answer", DefaultValueFactory = _ => 5 };
        var command = new Command("health", "Ask a running service whether it reaches the broker and the database; exit 0 when healthy") { address, timeout };
        command.SetAction(async (result, cancellationToken) =>
        {
            var url = $"http://{result.GetValue(address)}/health";
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(result.GetValue(timeout)) };
            try
            {
                using var response = await http.GetAsync(url, cancellationToken);
                Output.Line(await response.Content.ReadAsStringAsync(cancellationToken));
                return response.IsSuccessStatusCode ? XtelemdbCommand.Done : XtelemdbCommand.Failed;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or UriFormatException)
            {
                Output.Error($"{url}: {e.Message}");
                return XtelemdbCommand.Failed;
            }
        });
        return command;
    }
}
