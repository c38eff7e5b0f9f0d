# One image for every service: the command chooses it (run Inventory, run Watcher Replicator, sync continuous=true).
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
# Precompiled (ReadyToRun): a service otherwise compiles MassTransit's and Npgsql's code at every
# start; measured with bench/builds.py, start-up 1.24 s against 1.83 s, and 6% less CPU in a
# 20,000-file sync (bench/results/2026-11-28T1815-builds.txt).
RUN dotnet publish src/Cli -c Release -p:PublishReadyToRun=true --use-current-runtime --self-contained false -o /app

# aspnet: the services serve /health and /metrics with Kestrel.
FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# The official image's unprivileged user.
USER app
ENTRYPOINT ["/app/xtelemdb"]
CMD ["sync", "continuous=true", "--config", "/etc/xtelemdb/xtelemdb.toml"]
