/**
 * A fresh PostgreSQL schema for a run that must not share its store (a test,
 * a benchmark target): created in the database of `databaseUrl`, with a
 * store URL whose connections work in it (`options=-c search_path=<schema>`),
 * dropped by `drop()`.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { connectionConfig } from '../../src/repositories/postgres.repository.js'

export interface FreshSchema {
  name: string
  /** `databaseUrl` with the schema as search_path: a store URL for the repository or a server (DATABASE_URL). */
  url: string
  /** A connection to the database outside the schema (qualify the tables: `${name}.documents`). */
  admin: pg.Client
  /** Drops the schema and everything in it; closes the admin connection. */
  drop(): Promise<void>
}

/** A url's `options=-c search_path=<schema>`, added to its query string (pg reads it from the URL). */
export function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url)
  parsed.searchParams.set('options', `-c search_path=${schema}`)
  return parsed.toString()
}

/** Creates a fresh schema `<prefix>_<random>` in the database of `databaseUrl`. */
export async function createSchema(databaseUrl: string, prefix = 'sc'): Promise<FreshSchema> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client(connectionConfig(databaseUrl))
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${name}`)
  return {
    name,
    url: withSearchPath(databaseUrl, name),
    admin,
    async drop() {
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)
      } finally {
        await admin.end()
      }
    },
  }
}
