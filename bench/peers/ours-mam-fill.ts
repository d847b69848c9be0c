/**
 * Fills our server's message archive (XEP-0313) before the server starts, through the mam
 * module's own store (modules/mam/store.ts, SqliteMamStore: the same rows and
 * batched transactions as live archiving), so that the archive scenario can query an archive
 * of a million rows without sending half a million messages first.
 *
 *   node dist/bench/peers/ours-mam-fill.js <config.yaml> <rows> <users>
 *
 * Rows are messages between the pairs (u0,u1), (u2,u3), ... in turn, each archived twice
 * (the sender's 'out' row, the receiver's 'in' row), one millisecond apart, ending now.
 */
import pino from 'pino';
import { loadConfig } from '../../src/config';
import { Core } from '../../src/core';
import { databasePath, selectModules } from '../../src/server';
import { SqliteMamStore, type NewArchiveEntry } from '../../modules/mam/store';
import { archivedText } from '../../modules/mam';
import { userName } from './types';

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
  const store = new SqliteMamStore(core.db, archivedText, (_err, lost) => {
    failed += lost;
  });
  const pairs = Math.floor(users / 2);
  const messages = Math.floor(rows / 2);
  const start = Date.now() - messages;
  try {
    for (let m = 0; m < messages; m++) {
      const p = m % pairs;
      const dir = (m / pairs) & 1;
      const a = `${userName(2 * p + dir)}@${domain}`;
      const b = `${userName(2 * p + (dir ^ 1))}@${domain}`;
      const text = `fill message ${m} lorem ipsum dolor sit amet consectetur adipiscing elit`;
      const xml = `<message xmlns='jabber:client' from='${a}/bench' to='${b}' type='chat' id='f${m}'><body>${text}</body></message>`;
      const ts = start + m;
      const out: NewArchiveEntry = { owner: a, withBare: b, withResource: '', direction: 'out', ts, xml };
      const inn: NewArchiveEntry = { owner: b, withBare: a, withResource: 'bench', direction: 'in', ts, xml };
      store.append(out);
      store.append(inn);
    }
    await store.flush();
  } finally {
    await core.close();
  }
  process.stderr.write(`archived ${2 * messages} rows in ${Date.now() - t0} ms (${failed} failed)\n`);
  if (failed > 0) process.exit(1);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
