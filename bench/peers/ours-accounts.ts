/**
 * Creates the benchmark accounts u0 .. u<N-1> in our server's database, before the server
 * starts, through the server's own Core (Core.create + createUser: the same SCRAM-SHA-1 and
 * SCRAM-SHA-256 keys, 4096 iterations, random salt per account, and the same user/created
 * hooks as `xmppd user add`), all in one SQLite transaction. One process for all accounts:
 * `xmppd user add` per account costs a process start each.
 *
 *   node dist/bench/peers/ours-accounts.js <config.yaml> <count>
 */
import pino from 'pino';
import { loadConfig } from '../../src/config';
import { Core } from '../../src/core';
import { databasePath, selectModules } from '../../src/server';
import { passwordFor, userName } from './types';

async function main(): Promise<void> {
  const [configFile, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  if (!configFile || !(count >= 0)) throw new Error('usage: ours-accounts <config.yaml> <count>');
  const cfg = loadConfig(configFile);
  const core = await Core.create({
    domains: cfg.domains,
    database: databasePath(cfg),
    log: pino({ level: 'warn' }, pino.destination(2)),
    modules: selectModules(cfg),
  });
  const domain = cfg.domains[0]!;
  const t0 = Date.now();
  core.db.exec('BEGIN');
  try {
    for (let i = 0; i < count; i++) {
      const user = userName(i);
      await core.createUser(`${user}@${domain}`, passwordFor(user));
    }
    core.db.exec('COMMIT');
  } catch (err) {
    core.db.exec('ROLLBACK');
    throw err;
  } finally {
    await core.close();
  }
  process.stderr.write(`created ${count} accounts in ${Date.now() - t0} ms\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
