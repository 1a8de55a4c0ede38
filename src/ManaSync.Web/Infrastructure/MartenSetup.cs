using JasperFx.Events;
using JasperFx.Events.Projections;
using ManaSync.Events;
using ManaSync.Events.Upcasting;
using ManaSync.Projections.Records;
using ManaSync.Web.Infrastructure.Sharding;
using Marten;
using Npgsql;
using Weasel.Core;
using Weasel.Postgresql.Connections;

namespace ManaSync.Web.Infrastructure;

/// <summary>Registers the record view projection with the schema migration chain from the container.</summary>
public sealed class RecordViewProjectionSetup(ChangeUpcasting upcasting) : IConfigureMarten
{
    public void Configure(IServiceProvider services, StoreOptions options) =>
        options.Projections.Add(new RecordViewProjection(upcasting, MartenSetup.Schema), ProjectionLifecycle.Inline);
}

public static class MartenSetup
{
    public const string Schema = "manasync";

    /// <summary>
    /// One database, or with shards Marten's own database-per-tenant support with each shard a tenant (named as
    /// the shard) in its own database: Marten creates and migrates the schema in every shard and hands out sessions
    /// for a shard by its name; a session without one is main's.
    /// </summary>
    public static void ConfigureManaSync(this StoreOptions options, ShardSet shards)
    {
        if (!shards.IsSharded) options.Connection(DataSources.Create(shards.Main.ConnectionString));
        else
        {
            options.DataSourceFactory(new ShardDataSources());
            options.MultiTenantedDatabases(tenancy =>
            {
                foreach (var shard in shards.All) tenancy.AddSingleTenantDatabase(shard.ConnectionString, shard.Name);
            });
            options.Advanced.DefaultTenantUsageEnabled = true;
        }
        options.DatabaseSchemaName = Schema;
        options.UseSystemTextJsonForSerialization(EnumStorage.AsString, Casing.CamelCase);

        // One stream per (app, user): "todo:alice".
        options.Events.StreamIdentity = StreamIdentity.AsString;
        // Client-supplied eventIds make retries idempotent; the index is the last line of defence.
        options.Events.EnableUniqueIndexOnEventId = true;
        options.Events.AddEventType<ChangeRecorded>();
        // Marten's own meter (marten_marten_event_append on /metrics, by event type and shard) and, while tracing, a span per
        // session connection; both cost nothing more than a check when nothing listens.
        options.OpenTelemetry.TrackEventCounters();
        options.OpenTelemetry.TrackConnections = JasperFx.OpenTelemetry.TrackLevel.Normal;

        // The feed reads views by scope, app and table in position order (ChangeFeed), so those members
        // are duplicated into columns under two feed indexes. Not with Duplicate(), which indexes each
        // column alone as well: five more index writes per upsert, and on a young table a planner led
        // away from the feed indexes (measured in docs/benchmarks.md).
        options.Policies.ForAllDocuments(mapping =>
        {
            if (mapping.DocumentType != typeof(RecordView)) return;
            mapping.DuplicateField(nameof(RecordView.Scope), notNull: true);
            mapping.DuplicateField(nameof(RecordView.AppId), notNull: true);
            mapping.DuplicateField(nameof(RecordView.TableName), notNull: true);
            mapping.DuplicateField(nameof(RecordView.PositionTx), pgType: "bigint", notNull: true);
            mapping.DuplicateField(nameof(RecordView.PositionIndex), pgType: "integer", notNull: true);
            // Filtered on, not indexed: a read that leaves out the reader's own records skips them in PostgreSQL.
            mapping.DuplicateField(nameof(RecordView.SoleClient));
        });
        // A numeric version column, as Marten made it for the aggregation the projection used to be: existing tables stay as they are.
        options.Schema.For<RecordView>()
            .UseNumericRevisions(true)
            .Index([view => view.Scope, view => view.AppId, view => view.TableName, view => view.PositionTx, view => view.PositionIndex],
                index => index.Name = "ix_recordview_feed_by_table")
            .Index([view => view.Scope, view => view.AppId, view => view.PositionTx, view => view.PositionIndex],
                index => index.Name = "ix_recordview_feed_by_app");
    }
}

/// <summary>Marten opens each shard's pool as the server opens every other (several hosts included).</summary>
internal sealed class ShardDataSources : INpgsqlDataSourceFactory
{
    public NpgsqlDataSource Create(string connectionString) => DataSources.Create(connectionString);

    public NpgsqlDataSource Create(string masterConnectionString, string databaseName) =>
        DataSources.Create(new NpgsqlConnectionStringBuilder(masterConnectionString) { Database = databaseName }.ConnectionString);
}
