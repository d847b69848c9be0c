/**
 * Fills our server's message archive (XEP-0313) before the server starts, through the mam
 * module's own store (modules/mam/store.ts, SqliteMamStore, in the archive file beside the
 * server's database: the same rows and batched transactions as live archiving), so that the
 * archive scenario can query an archive of a million rows without sending half a million
 * messages first.
 *
 *   node dist/bench/peers/ours-mam-fill.js <config.yaml> <rows> <users>
 *
 * Rows are messages between the pairs (u0,u1), (u2,u3), ... in turn, each archived twice
 * (in the sender's archive and the receiver's, which share one row of the table as they do
 * when the server archives a message), one millisecond apart, ending now.
 */
import pino from 'pino';
import { loadConfig } from '../../src/config';
import { Core } from '../../src/core';
import { databasePath, selectModules } from '../../src/server';
import { MAM_MIGRATIONS, SqliteMamStore, type NewArchiveEntry } from '../../modules/mam/store';
import { archiveFileFor } from '../../modules/mam/worker-store';
import { openDatabase } from '../../src/storage/database';
import { migrate } from '../../src/storage/migrate';
import { archivedText } from '../../modules/mam';
import { x } from '../../src/xml/element';
import { fillMessages } from './archive-fill';

async function main(): Promise<void> {
  const [configFile, rowsArg, usersArg] = process.argv.slice(2);
  const rows = Number(rowsArg);
  const users = Number(usersArg);
  if (!configFile || !(rows >= 0) || !(users >= 2)) throw new Error('usage: ours-mam-fill <config.yaml> <rows> <users>');
  const cfg = loadConfig(configFile);
  const core = await Core.create({
    domains: cfg.domains,
    database: databasePath(cfg),
    log: pino({ level: 'warn' }, pino.destination(2)),
    modules: selectModules(cfg),
  });
  const domain = cfg.domains[0]!;
  const t0 = Date.now();
  let failed = 0;
  // The archive file beside the server's database, as the mam module opens it.
  const archiveDb = openDatabase(archiveFileFor(databasePath(cfg)));
  migrate(archiveDb, 'mam', MAM_MIGRATIONS);
  const store = new SqliteMamStore(archiveDb, archivedText, (_err, lost) => {
    failed += lost;
  });
  let messages = 0;
  try {
    for (const m of fillMessages(rows, users, domain)) {
      const xml = x('message', { xmlns: 'jabber:client', from: `${m.from}/bench`, to: m.to, type: 'chat', id: m.id }, x('body', null, m.body));
      const out: NewArchiveEntry = { owner: m.from, withBare: m.to, withResource: '', direction: 'out', ts: m.ts, xml };
      const inn: NewArchiveEntry = { owner: m.to, withBare: m.from, withResource: 'bench', direction: 'in', ts: m.ts, xml };
      store.append(out);
      store.append(inn);
      messages++;
    }
    await store.flush();
  } finally {
    archiveDb.close();
    await core.close();
  }
  process.stderr.write(`archived ${2 * messages} rows in ${Date.now() - t0} ms (${failed} failed)\n`);
  if (failed > 0) process.exit(1);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
