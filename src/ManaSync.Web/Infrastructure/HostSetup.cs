using JasperFx;
using JasperFx.CodeGeneration;
using ManaSync.Events.Upcasting;
using ManaSync.Web.Auth;
using ManaSync.Web.Configuration;
using ManaSync.Web.Features.Audit;
using ManaSync.Web.Features.AuditConsole;
using ManaSync.Web.Features.Rebuild;
using ManaSync.Web.Features.Dev;
using ManaSync.Web.Features.Live;
using ManaSync.Web.Features.Metrics;
using ManaSync.Web.Features.Sync;
using ManaSync.Web.Features.Tenancy;
using ManaSync.Web.Features.WritePath;
using ManaSync.Web.Infrastructure.Isolation;
using ManaSync.Web.Infrastructure.Preamble;
using ManaSync.Web.Infrastructure.Sharding;
using ManaSync.Web.Infrastructure.Tracing;
using Marten;
using Npgsql;
using Prometheus;
using Wolverine;
using Wolverine.Http;
using Wolverine.Marten;

namespace ManaSync.Web.Infrastructure;

/// <summary>Everything the server registers and the order its middleware runs in.</summary>
public static class HostSetup
{
    public static void AddManaSync(this WebApplicationBuilder builder, ServerSettings settings, ShardSet shards)
    {
        builder.AddManaSyncLogging();
        var node = new TraceNode();
        builder.AddManaSyncTracing(node);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ListenAnyIP(settings.Port);
            kestrel.Limits.MaxRequestBodySize = RequestBody.MaxBytes + 1;
        });

        var services = builder.Services;
        services.AddSingleton(settings);
        services.AddSingleton(node);
        // On SIGTERM, in-flight pushes get up to 15 s to finish; live streams end at once (clients resume elsewhere).
        services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(15));
        services.AddSingleton(TimeProvider.System);
        var databases = new ShardDatabases(new ShardSet(
            shards.All.Select(shard => shard with { ConnectionString = WithConnectionDefaults(shard.ConnectionString) }).ToList(),
            settings.ShardWeights));
        services.AddSingleton(databases);
        services.AddSingleton(databases.Shards);
        services.AddSingleton(databases.Main);

        services.AddManaSyncAuthentication(settings);
        if (settings.IssuesDevTokens) services.AddSingleton<DevIssuer>();
        services.AddManaServices();
        services.AddCors(cors => cors.AddDefaultPolicy(policy => policy
            .WithOrigins([.. settings.CorsOrigins])
            .WithMethods("GET", "POST", "OPTIONS")
            .WithHeaders("Authorization", "Content-Type", "X-Client-Id", "Last-Event-ID")
            .AllowCredentials()));

        services.AddSingleton<ChangeUpcasting>();
        services.AddSingleton<IConfigureMarten, RecordViewProjectionSetup>();
        services.AddMarten(options => options.ConfigureManaSync(databases.Shards))
            // With shards, Wolverine keeps its own node and message tables in main.
            .IntegrateWithWolverine(wolverine => wolverine.MasterDataSource = databases.Shards.IsSharded ? databases.Main : null)
            .ApplyAllDatabaseChangesOnStartup();
        // After Marten's own start-up work, which creates the tables the policies protect.
        services.AddHostedService<RowSecuritySetup>();
        services.AddHostedService<FeedClockSetup>();
        services.AddHostedService<ShardSetup>();
        services.AddSingleton<ShardMap>();
        services.AddSingleton<ViewRebuilder>();
        services.AddSingleton<AuditorRegistry>();
        services.AddSingleton(provider => new CallerSessions(provider.GetRequiredService<IDocumentStore>(),
            databases.Shards.All.ToDictionary(shard => shard.Name, shard => DataSources.Create(ForRequests(shard.ConnectionString))),
            provider.GetRequiredService<ShardMap>()));

        services.AddSingleton<LiveConnections>();
        services.AddSingleton<LiveHub>();
        services.AddSingleton<TokenValidator>();
        services.AddSingleton<WebSocketSession.Services>();
        services.AddHostedService<ChangeListener>();
        services.AddHostedService<PendingWritesSweeper>();

        // Production loads the code Wolverine and Marten generate from what is compiled in
        // (Internal/Generated, written by `codegen write`) instead of compiling it at start-up;
        // elsewhere pre-generated code is used when current and compiled at run time when not.
        services.CritterStackDefaults(defaults =>
        {
            defaults.Production.GeneratedCodeMode = TypeLoadMode.Static;
            defaults.Development.GeneratedCodeMode = TypeLoadMode.Auto;
        });
        builder.Host.UseWolverine(options => options.ConfigureManaSync());
        services.AddWolverineHttp();
        services.AddOpenApi();
    }

    /// <summary>
    /// Connection defaults for every pool (requests', Marten's own, and the one for start-up and
    /// administrative work); a DATABASE_URL that sets its own value wins.
    /// - Requests run the same few statements over and over (a push: its locks and reads, the append,
    ///   the view upsert, the answer's page), so connections keep them prepared: PostgreSQL then skips
    ///   parsing and planning, which cost more than executing them.
    /// - At most <see cref="DefaultMaxPoolSize"/> connections per pool, not Npgsql's 100: a burst of
    ///   requests then waits in the pool for a connection instead of opening more backends than
    ///   PostgreSQL's cores can run (or than its max_connections, 100 by default, allows — two pools of
    ///   100 answered a burst with "too many clients" and 20 s latencies; docs/benchmarks.md).
    /// - With several hosts (a primary and its standbys), every pool connects to the primary only, and notices a
    ///   failover within seconds: Npgsql remembers whether a host is primary, standby or offline for
    ///   <c>Host Recheck Seconds</c> (10 by default, here 2), so a standby just promoted is taken up that soon
    ///   after; and a host that does not answer is given up after <c>Timeout</c> (15 s by default, here 5) so a
    ///   request moves on to the next one (docs/deployment.md, "Failover").
    /// </summary>
    public static string WithConnectionDefaults(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 64;
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        bool Given(params string[] keywords) => keywords.Any(given.ContainsKey);
        if (!Given("Maximum Pool Size", "MaxPoolSize")) builder.MaxPoolSize = DefaultMaxPoolSize;
        if (builder.Host?.Contains(',') == true)
        {
            builder.TargetSessionAttributes ??= "read-write";
            if (!Given("Host Recheck Seconds", "HostRecheckSeconds")) builder.HostRecheckSeconds = 2;
            if (!Given("Timeout")) builder.Timeout = 5;
        }
        return builder.ConnectionString;
    }

    /// <summary>
    /// The requests' pool: its connections open as the restricted role, and plan each prepared statement once
    /// (generic plans): a request's statements have one shape whatever their values (the feed reads an index
    /// range per scope), and planning the feed read afresh on every request cost PostgreSQL almost as much as
    /// running it. Without JIT compilation: a generic plan's estimate for a large table passes JIT's threshold,
    /// and compiling a feed read's expressions took 20 ms where running it takes 1 (docs/benchmarks.md).
    /// </summary>
    private static string ForRequests(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(RowSecurity.ConnectingAsAppRole(connectionString));
        builder.Options = $"{builder.Options} -c plan_cache_mode=force_generic_plan -c jit=off";
        return builder.ConnectionString;
    }

    public const int DefaultMaxPoolSize = 20;

    public static void UseManaSync(this WebApplication app, ServerSettings settings)
    {
        app.UseJsonErrors();
        app.UseHttpMetrics();
        app.UseCors();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.UseAuthentication();
        app.UseRequestLogScope();
        app.UseAuthorization();
        app.MapWolverineEndpoints(options =>
        {
            options.RequireAuthorizeOnAll();
            options.AddRequestPreamble();
        });
        if (settings.IssuesDevTokens) app.MapDevTokenEndpoints();
        app.MapAuditConsole(settings);
        // The HTTP API described for developers, at /openapi/v1.json (Development only).
        if (app.Environment.IsDevelopment()) app.MapOpenApi().AllowAnonymous();
        app.MapMetrics().AllowAnonymous();
        SyncMetrics.ReportLiveState(app.Services.GetRequiredService<LiveConnections>(), app.Services.GetRequiredService<LiveHub>(),
            app.Services.GetRequiredService<ViewRebuilder>());
    }
}
