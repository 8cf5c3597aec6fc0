/**
 * The PostgreSQL store's schema, versioned: numbered migrations, applied in
 * order at every start by `migrate`, all pending ones in one transaction, each
 * recorded in `schema_migrations`. A start on an up-to-date schema applies
 * nothing. Tables are created in the connection's current schema (the first
 * of its search_path), so one database can hold several stores apart.
 *
 * Every table is keyed by the document (user) id first. Text keys use the "C"
 * collation: byte order, as LevelDB's keys, for the ordered reads
 * (entities by time, snapshots, paging through documents). Entity keys
 * (`<type> NUL <id>`) and change ids (chosen by clients) are bytea, their
 * UTF-8 bytes: PostgreSQL text cannot hold NUL. Records are `json` (kept as
 * written; jsonb refuses the escaped NUL a client's string may hold).
 * Timestamps are float8 milliseconds, as JavaScript numbers.
 *
 *   documents        doc_id → clock, summary (json): written by every commit
 *   log_entries      (doc_id, seq int8) → data (bytea): the update log; after
 *                    a compaction, the entry at its seq is the merged state
 *   entities         (doc_id, entity_key) → ts, record (json);
 *                    index (doc_id, ts, entity_key) for the by-time reads
 *   conflicts        (doc_id, conflict_id) → record (json)
 *   change_ids       (doc_id, change_id) → applied_at, record (json);
 *                    index (doc_id, applied_at) for the TTL pruning
 *   devices          (doc_id, device_id) → record (json)
 *   snapshots        (doc_id, snapshot_id) → meta (json), state (bytea)
 *   revoked_devices  (doc_id, device_id) → revoked_at
 *   leases           doc_id → node_id, public_url, epoch int8, expires_at:
 *                    cluster mode's owner of each user (postgres-leases.ts);
 *                    the row stays when released, so its epoch only grows
 *
 * Invariant: `log_entries`, `entities`, `conflicts`, `change_ids` and
 * `devices` hold rows only of documents with a `documents` row (every
 * commit writes it; only `erase` removes it, with everything else). The
 * documents the store holds are therefore those of `documents`, `snapshots`
 * and `revoked_devices`.
 */
import type { ClientBase } from 'pg'

export interface Migration {
  version: number
  name: string
  sql: string
}

const key = 'text COLLATE "C" NOT NULL'

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'documents, log, entity index, conflicts, change ids, devices, snapshots, revocations',
    sql: `
      CREATE TABLE documents (
        doc_id ${key} PRIMARY KEY,
        clock float8 NOT NULL,
        summary json
      );
      CREATE TABLE log_entries (
        doc_id ${key},
        seq int8 NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (doc_id, seq)
      );
      CREATE TABLE entities (
        doc_id ${key},
        entity_key bytea NOT NULL,
        ts float8 NOT NULL,
        record json NOT NULL,
        PRIMARY KEY (doc_id, entity_key)
      );
      CREATE INDEX entities_by_time ON entities (doc_id, ts, entity_key);
      CREATE TABLE conflicts (
        doc_id ${key},
        conflict_id ${key},
        record json NOT NULL,
        PRIMARY KEY (doc_id, conflict_id)
      );
      CREATE TABLE change_ids (
        doc_id ${key},
        change_id bytea NOT NULL,
        applied_at float8 NOT NULL,
        record json NOT NULL,
        PRIMARY KEY (doc_id, change_id)
      );
      CREATE INDEX change_ids_by_time ON change_ids (doc_id, applied_at);
      CREATE TABLE devices (
        doc_id ${key},
        device_id ${key},
        record json NOT NULL,
        PRIMARY KEY (doc_id, device_id)
      );
      CREATE TABLE snapshots (
        doc_id ${key},
        snapshot_id ${key},
        meta json NOT NULL,
        state bytea NOT NULL,
        PRIMARY KEY (doc_id, snapshot_id)
      );
      CREATE TABLE revoked_devices (
        doc_id ${key},
        device_id ${key},
        revoked_at float8 NOT NULL,
        PRIMARY KEY (doc_id, device_id)
      );
      -- Large values (updates, states, snapshots) are stored out of line, uncompressed:
      -- Yjs updates compress poorly, and reads need them whole.
      ALTER TABLE log_entries ALTER COLUMN data SET STORAGE EXTERNAL;
      ALTER TABLE snapshots ALTER COLUMN state SET STORAGE EXTERNAL;
    `,
  },
  {
    version: 2,
    name: 'cluster leases (one owner per user, fenced writes)',
    sql: `
      CREATE TABLE leases (
        doc_id ${key} PRIMARY KEY,
        node_id text NOT NULL,
        public_url text NOT NULL,
        epoch int8 NOT NULL,
        expires_at timestamptz NOT NULL
      );
      -- The fencing check of a cluster node's write (postgres-leases.ts), run inside the write's own
      -- statement: every document of the batch must still be leased to this node at the epoch it
      -- took, else the whole statement (the whole batch) fails. FOR SHARE keeps a takeover from
      -- committing between this check and the write's commit (it waits, then sees the write).
      CREATE FUNCTION lease_fence(doc_ids text[], epochs int8[], node text) RETURNS int4
      LANGUAGE plpgsql AS $fence$
      DECLARE
        held int4;
      BEGIN
        SELECT count(*) INTO held FROM (
          SELECT 1 FROM leases l JOIN unnest(doc_ids, epochs) AS h(doc_id, epoch)
            ON l.doc_id = h.doc_id AND l.epoch = h.epoch
          WHERE l.node_id = node
          FOR SHARE OF l
        ) AS still_held;
        IF held <> cardinality(doc_ids) THEN
          RAISE EXCEPTION 'lease lost: % of % documents are no longer leased to node %', cardinality(doc_ids) - held, cardinality(doc_ids), node
            USING ERRCODE = 'SCL01';
        END IF;
        RETURN held;
      END
      $fence$;
    `,
  },
]

/** The advisory lock class serializing migrations of one schema (the store's own lock is another class). */
const MIGRATION_LOCK_CLASS = 0x5c_17_5e_c6

/** The schema version this server knows (its newest migration). */
export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0)

export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError'
}

/**
 * Brings the connection's current schema to `SCHEMA_VERSION`: the pending
 * migrations in order, in one transaction (all or none), each recorded.
 * Returns the versions applied (none on an up-to-date schema). Refuses a
 * schema newer than this server (a downgrade). A transaction-level advisory
 * lock keeps two servers (the nodes of a cluster) from migrating at once.
 */
export async function migrate(client: ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  await client.query('BEGIN')
  try {
    // Nodes of a cluster start at once without the store's lock: one migrates, the others wait and find it done.
    await client.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_CLASS}::int4, hashtext(current_schema()))`)
    await client.query(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version int4 PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`)
    const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations')
    const current = rows[0]?.version ?? 0
    const newest = migrations.reduce((max, m) => Math.max(max, m.version), 0)
    if (current > newest) {
      throw new SchemaTooNewError(`the database schema is at version ${current}, newer than this server's ${newest}: upgrade the server`)
    }
    const pending = [...migrations].filter((m) => m.version > current).sort((a, b) => a.version - b.version)
    for (const m of pending) {
      await client.query(m.sql)
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name])
    }
    await client.query('COMMIT')
    return pending.map((m) => m.version)
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  }
}
