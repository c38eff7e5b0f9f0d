using MassTransit;

namespace Xtelemdb.Hosting;

/// <summary>
/// What one service adds to the bus. MassTransit is registered once per process, so the
/// all-in-one mode gathers the parts of every service it runs into that one registration.
/// </summary>
public interface IBusPart
{
    void AddConsumers(IBusRegistrationConfigurator bus);

    /// <summary>Receive endpoints that <c>ConfigureEndpoints</c> cannot name on its own.</summary>
    void ConfigureEndpoints(IBusRegistrationContext context, IBusFactoryConfigurator bus);
}
