using MassTransit;
using MassTransit.Serialization;

namespace Xtelemdb.Hosting;

/// <summary>
/// Messages written for people to read in the management UI's "Get messages" (answers, damage
/// reports): plain JSON, without MassTransit's envelope around them.
/// </summary>
public static class PlainJson
{
    public static readonly IMessageSerializer Serializer = new SystemTextJsonRawMessageSerializer(RawSerializerOptions.Default);

    public static void Use<T>(SendContext<T> context) where T : class => context.Serializer = Serializer;
}
