import type { Database } from './database';

/** A schema step: SQL text, or a function for changes SQL alone cannot express. Index + 1 = version. */
export type Migration = string | ((db: Database) => void);

/**
 * Brings `owner`'s tables up to date, all pending steps in one transaction. Versions are
 * tracked per owner (core or module name) in schema_version; a shipped step is never edited.
 */
export function migrate(db: Database, owner: string, migrations: readonly Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (owner TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT`);
  const row = db.prepare('SELECT version FROM schema_version WHERE owner = ?').get(owner) as { version: number } | undefined;
  const current = row?.version ?? 0;
  if (current > migrations.length) {
    throw new Error(`${owner}: database schema version ${current} is newer than this code knows (${migrations.length}); upgrade the server`);
  }
  if (current === migrations.length) return;
  db.transaction(() => {
    for (let v = current; v < migrations.length; v++) {
      const step = migrations[v]!;
      if (typeof step === 'string') db.exec(step);
      else step(db);
    }
    db.prepare('INSERT INTO schema_version (owner, version) VALUES (?, ?) ON CONFLICT(owner) DO UPDATE SET version = excluded.version')
      .run(owner, migrations.length);
  })();
}
