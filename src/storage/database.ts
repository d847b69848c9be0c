import BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Database = BetterSqlite3.Database;

/**
 * Opens the server's SQLite file in WAL mode. synchronous=FULL makes every committed
 * transaction durable before we acknowledge it (a stored offline message survives a crash
 * or power loss); WAL keeps readers and the single writer from blocking each other.
 */
export function openDatabase(file: string, options: { pageSize?: number } = {}): Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new BetterSqlite3(file);
  // Takes effect only in a new file (before its first write, which WAL mode is).
  if (options.pageSize !== undefined) db.pragma(`page_size = ${options.pageSize}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}
