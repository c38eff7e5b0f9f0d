using System.Text.Json;
using System.Text.Json.Serialization;

namespace Xtelemdb;

/// <summary>
/// Rebuild the backlog from the database. Every field narrows it; none means everything.
/// Operators publish this as plain JSON from the RabbitMQ management UI.
/// </summary>
public sealed record ResyncRequested
{
    /// <summary>A replica as registered, e.g. "exao1:/mnt/backup", or a bare path "/mnt/backup".</summary>
    [JsonConverter(typeof(TypedByHand))]
    public string? Replica { get; init; }
    [JsonConverter(typeof(TypedByHand))]
    public string? OriginHost { get; init; }
    [JsonConverter(typeof(TypedByHand))]
    public string? PathPrefix { get; init; }

    /// <summary>
    /// Reads any JSON value as its text, so that a body typed by hand with a number or a list where
    /// text belongs reaches the inventory, which refuses it naming the field, rather than failing
    /// in the deserializer with a message about tokens.
    /// </summary>
    public sealed class TypedByHand : JsonConverter<string?>
    {
        public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.String ? reader.GetString() : JsonDocument.ParseValue(ref reader).RootElement.GetRawText();

        public override void Write(Utf8JsonWriter writer, string? value, JsonSerializerOptions options) => writer.WriteStringValue(value);
    }
}
