import { mkdir } from 'node:fs/promises'
import { Level } from 'level'
import { StoreLockedError } from '../utils/errors.js'

/** The one LevelDB handle of a server: binary keys and values. */
export type Store = Level<Uint8Array, Uint8Array>

/**
 * Opens (creating) the LevelDB database under `dataDir/db`. LevelDB holds an
 * exclusive file lock, so a second process on the same directory fails here, at
 * once, with a `StoreLockedError` rather than later with a corrupt store.
 */
export async function openStore(dataDir: string): Promise<Store> {
  await mkdir(dataDir, { recursive: true })
  const db: Store = new Level<Uint8Array, Uint8Array>(`${dataDir}/db`, {
    keyEncoding: 'view',
    valueEncoding: 'view',
  })
  try {
    await db.open()
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause
    if (cause?.code === 'LEVEL_LOCKED') throw StoreLockedError.dataDir(dataDir, err)
    throw err
  }
  return db
}
