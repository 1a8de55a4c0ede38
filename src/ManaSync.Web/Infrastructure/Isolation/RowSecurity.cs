using ManaSync.Web.Features.Audit;
using Npgsql;

namespace ManaSync.Web.Infrastructure.Isolation;

/// <summary>
/// Row-level security behind every application check. Requests run as <see cref="AppRole"/> — not a
/// superuser, no BYPASSRLS — with the caller's identity set for the transaction, and the policies
/// below let that role see only the caller's rows, whatever a query forgets to filter.
/// </summary>
/// <remarks>
/// Applied at start-up, after Marten's own schema, by the role DATABASE_URL names (which keeps doing
/// schema changes). Idempotent, and serialised by an advisory lock when several nodes start at once.
/// </remarks>
public static class RowSecurity
{
    public const string AppRole = "manasync_app";

    /// <summary>The role an auditor's reads of another user's data run as: it may select, nothing else, and sees rows
    /// only while its auditor is registered (<see cref="AuditorRegistry"/>).</summary>
    public const string AuditorRole = "manasync_auditor";

    public const string UserSetting = "manasync.user_id";
    public const string ScopesSetting = "manasync.scopes";
    public const string AuditorSetting = "manasync.auditor";

    private static readonly string Setup = """
        select pg_advisory_xact_lock(hashtextextended('manasync.row_security', 0));

        do $$
        declare
          needed text;
        begin
          -- Roles belong to the whole cluster, which the advisory lock (per database) does not cover.
          foreach needed in array array['manasync_app', 'manasync_auditor'] loop
            if not exists (select from pg_roles where rolname = needed) then
              begin
                execute format('create role %I nologin nosuperuser nobypassrls', needed);
              exception when duplicate_object or unique_violation then
                null;
              end;
            end if;
            if not pg_has_role(current_user, needed, 'member') then
              execute format('grant %I to %I', needed, current_user);
            end if;
          end loop;
        end $$;

        -- The caller, as the server set it for this transaction; '' (unset) means nobody.
        create or replace function manasync.caller_user() returns text
          language sql stable as $$ select nullif(current_setting('manasync.user_id', true), '') $$;
        -- The scopes are a text[] literal, so this is one expression PostgreSQL inlines into each policy:
        -- a function it had to call per row (as the JSON reading of an earlier version did) cost
        -- ~75 µs per upserted view, about a third of a push's work inside PostgreSQL (docs/benchmarks.md).
        create or replace function manasync.caller_scopes() returns text[]
          language sql stable as $$ select coalesce(nullif(current_setting('manasync.scopes', true), '')::text[], '{}') $$;
        -- The auditor reading another user's data in this transaction, if one is.
        create or replace function manasync.caller_auditor() returns text
          language sql stable as $$ select nullif(current_setting('manasync.auditor', true), '') $$;
        -- Stream ids are "{appId}:{userId}"; app ids hold no ':'.
        create or replace function manasync.stream_owner(stream_id text) returns text
          language sql immutable as $$ select substr(stream_id, strpos(stream_id, ':') + 1) $$;

        -- Requests touch the three tables that hold user data, and nothing else: Marten's and
        -- Wolverine's bookkeeping (progress, dead letters, envelopes) stays out of the role's reach.
        grant usage on schema manasync to manasync_app;
        revoke all on all tables in schema manasync from manasync_app;
        grant select, insert, update on manasync.mt_events, manasync.mt_streams, manasync.mt_doc_recordview to manasync_app;
        grant usage, select on sequence manasync.mt_events_sequence to manasync_app;
        grant execute on all functions in schema manasync to manasync_app;

        -- Auditors: registered by the server's own role when a token with the audit scope first reads another
        -- user's data; their reads run as manasync_auditor, which may only select, and sees rows only while the
        -- auditor it reads for is registered here (the restrictive policies below), whatever the request path did.
        create table if not exists manasync.auditors (user_id text primary key, registered_at timestamptz not null default now());
        -- Every read of another user's data, written by the server's own role; read by auditors.
        create table if not exists manasync.audit_access (
          id bigserial primary key, auditor text not null, user_id text not null, path text not null, at timestamptz not null default now());
        create index if not exists ix_audit_access_at on manasync.audit_access (at desc, id desc);
        grant usage on schema manasync to manasync_auditor;
        revoke all on all tables in schema manasync from manasync_auditor;
        grant select on manasync.mt_events, manasync.auditors, manasync.audit_access to manasync_auditor;
        grant execute on all functions in schema manasync to manasync_auditor;
        alter table manasync.audit_access enable row level security;
        drop policy if exists registered_auditors on manasync.audit_access;
        create policy registered_auditors on manasync.audit_access to manasync_auditor
          using (exists (select from manasync.auditors a where a.user_id = (select manasync.caller_auditor())));
        drop policy if exists registered_auditor on manasync.mt_events;
        create policy registered_auditor on manasync.mt_events as restrictive to manasync_auditor
          using (exists (select from manasync.auditors a where a.user_id = (select manasync.caller_auditor())));

        """ + ViewPolicySql("manasync.mt_doc_recordview") + """

        -- Events: written only into the caller's own streams; readable there and, for members, in their spaces:
        -- the space a change named, the one its record was merged into, and the one it moved the record out of.
        alter table manasync.mt_events enable row level security;
        alter table manasync.mt_events force row level security;
        drop policy if exists caller_events on manasync.mt_events;
        create policy caller_events on manasync.mt_events
          using (manasync.stream_owner(stream_id) = (select manasync.caller_user())
                 or 's:' || (data ->> 'spaceId') = any((select manasync.caller_scopes())::text[])
                 or (data ->> 'recordScope') = any((select manasync.caller_scopes())::text[])
                 or (data ->> 'movedFrom') = any((select manasync.caller_scopes())::text[]))
          with check (manasync.stream_owner(stream_id) = manasync.caller_user());

        -- Audit reads find a record's events in record_events (RecordIndex): one row per event, written with it by the
        -- trigger below (as this role, which row security does not hold back here), visible to whoever sees its event:
        -- the row carries what the events' policy reads (the stream's owner; the scopes of the space the change named,
        -- of its record, and of the one it moved the record out of), so the check costs no lookup of the event.
        -- Events stored before it existed get theirs once, while appends wait (the mark says it was done). The index on
        -- the JSON that audit reads had before is dropped: under row security no request could use it.
        create table if not exists manasync.record_events (
          record text collate "C" not null, seq_id bigint not null, owner text not null, scopes text[] not null,
          primary key (record, seq_id));
        alter table manasync.record_events enable row level security;
        drop policy if exists with_their_events on manasync.record_events;
        create policy with_their_events on manasync.record_events
          using (owner = (select manasync.caller_user()) or scopes && (select manasync.caller_scopes())::text[]);
        drop policy if exists registered_auditor on manasync.record_events;
        create policy registered_auditor on manasync.record_events as restrictive to manasync_auditor
          using (exists (select from manasync.auditors a where a.user_id = (select manasync.caller_auditor())));
        grant select on manasync.record_events to manasync_app, manasync_auditor;
        -- The record of an event, as RecordIndex.Of spells it.
        create or replace function manasync.record_of(data jsonb) returns text
          language sql immutable as $$ select (data ->> 'appId') || chr(31) || (data ->> 'table') || chr(31) || (data ->> 'recordId') $$;
        -- The scopes the events' policy lets see an event besides its owner (caller_events below).
        create or replace function manasync.scopes_of(data jsonb) returns text[]
          language sql immutable as $$ select array_remove(array['s:' || (data ->> 'spaceId'), data ->> 'recordScope', data ->> 'movedFrom'], null) $$;
        create or replace function manasync.index_record_event() returns trigger
          language plpgsql security definer set search_path = pg_catalog as $$
        begin
          insert into manasync.record_events (record, seq_id, owner, scopes)
            values (manasync.record_of(new.data), new.seq_id, manasync.stream_owner(new.stream_id), manasync.scopes_of(new.data))
            on conflict do nothing;
          return null;
        end $$;
        create or replace trigger record_events after insert on manasync.mt_events
          for each row execute function manasync.index_record_event();
        drop index if exists manasync.ix_mt_events_by_record;
        create table if not exists manasync.setup_marks (mark text primary key, at timestamptz not null default now());
        do $$
        begin
          if not exists (select from manasync.setup_marks where mark = 'record_events') then
            lock table manasync.mt_events in share row exclusive mode;
        """ + "\n" + RecordIndex.IndexStoredEventsSql + ";\n" + """
            -- The planner's statistics now, not at autovacuum's next pass: without them it scans the log to find a record.
            analyze manasync.record_events;
            insert into manasync.setup_marks (mark) values ('record_events');
          end if;
        end $$;

        -- Streams: the caller's own.
        alter table manasync.mt_streams enable row level security;
        alter table manasync.mt_streams force row level security;
        drop policy if exists caller_streams on manasync.mt_streams;
        create policy caller_streams on manasync.mt_streams
          using (manasync.stream_owner(id) = (select manasync.caller_user()));
        """;

    /// <summary>
    /// Record views: the caller's own scope and their spaces'. "(select …)" reads the caller once per query, not once
    /// per row (parsing the scopes per row cost 8 µs a row, most of a pull's time). coalesce(…, false) keeps the check
    /// a plain row filter, for two reasons: the planner cannot turn it into a scan of the feed index (it did, to find
    /// the 50 records of one push by id, whenever statistics lagged behind a growing account), and it estimates it at
    /// one row in two rather than one in two hundred (which made pulls fetch and sort a whole scope per page).
    /// </summary>
    /// <param name="table">The views' table: Marten's, or one a rebuild builds to take its place.</param>
    public static string ViewPolicySql(string table) => $"""
        alter table {table} enable row level security;
        alter table {table} force row level security;
        drop policy if exists caller_scopes on {table};
        create policy caller_scopes on {table}
          using (coalesce(scope = any((select manasync.caller_scopes())::text[]), false))
          with check (scope = any(manasync.caller_scopes()));
        grant select, insert, update on {table} to {AppRole};
        drop policy if exists registered_auditor on {table};
        create policy registered_auditor on {table} as restrictive to {AuditorRole}
          using (exists (select from manasync.auditors a where a.user_id = (select manasync.caller_auditor())));
        grant select on {table} to {AuditorRole};
        """;

    public static async Task ApplyAsync(NpgsqlDataSource database, CancellationToken cancellation)
    {
        await using var connection = await database.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        try
        {
            await using (var setup = new NpgsqlCommand(Setup, connection, transaction))
                await setup.ExecuteNonQueryAsync(cancellation);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new InvalidOperationException(
                $"The database role cannot set up row-level security ({e.MessageText}). As a superuser, run: " +
                $"create role {AppRole} nologin; grant {AppRole} to <the DATABASE_URL role>; then restart.", e);
        }
        await transaction.CommitAsync(cancellation);
    }

    /// <summary>
    /// The connection string of the connections requests run on: they are <see cref="AppRole"/> from the moment
    /// they open (a startup option; resetting a pooled connection keeps it), so a statement sent before the
    /// caller's identity sees and writes nothing, rather than everything.
    /// </summary>
    public static string ConnectingAsAppRole(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        builder.Options = $"{builder.Options} -c role={AppRole}".Trim();
        return builder.ConnectionString;
    }

    /// <summary>
    /// Sets the caller for the rest of the transaction (for a read without one, the implicit transaction of its
    /// batch). It is sent with a transaction's first statements, in their round trip (see
    /// <see cref="CallerSession{TSession}"/>): one row, whose last column is the position of what the transaction stores.
    /// </summary>
    /// <param name="positionSql">For a writer, the expression of its position (<see cref="TransactionIdSql"/>, or with shards
    /// a stamp); readers take none, or they would hold back cursors.</param>
    /// <remarks>An auditor's reads (<see cref="Caller.Auditor"/>) run as <see cref="AuditorRole"/> for the transaction, with the
    /// auditor named: PostgreSQL then refuses any write, and shows rows only if that auditor is registered.</remarks>
    public static NpgsqlBatchCommand IdentityCommand(Caller caller, string? positionSql)
    {
        if (caller.Auditor is not null && positionSql is not null)
            throw new InvalidOperationException("An auditor only reads.");
        var auditor = caller.Auditor is null ? "" : $"set_config('role', '{AuditorRole}', true), set_config('{AuditorSetting}', $3, true), ";
        var command = new NpgsqlBatchCommand(
            $"select {auditor}set_config('{UserSetting}', $1, true), set_config('{ScopesSetting}', $2, true), {positionSql ?? "null::bigint"}")
        {
            Parameters = { new NpgsqlParameter { Value = caller.UserId }, new NpgsqlParameter { Value = ArrayLiteral(caller.Scopes) } },
        };
        if (caller.Auditor is not null) command.Parameters.Add(new NpgsqlParameter { Value = caller.Auditor });
        return command;
    }

    /// <summary>The current transaction's id (xid8) as a bigint, taking one if it has none yet.</summary>
    public const string TransactionIdSql = "pg_current_xact_id()::text::bigint";

    /// <summary>A PostgreSQL text[] literal: every element quoted, so commas, braces and spaces in ids stay inside it.</summary>
    private static string ArrayLiteral(IEnumerable<string> elements) =>
        "{" + string.Join(",", elements.Select(element => "\"" + element.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"")) + "}";
}
