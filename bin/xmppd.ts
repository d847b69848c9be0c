#!/usr/bin/env node
// xmppd command line: start the server and administer it (accounts, sessions).
import { Command, Option } from 'commander';
import { createInterface } from 'node:readline';
import { loadConfig, ConfigError, type Config } from '../src/config';
import { createLogger } from '../src/log';
import { XmppServer, adminSocketPath, databasePath, selectModules } from '../src/server';
import { Core, UserError } from '../src/core';
import { checkUser } from '../src/admin/admin-server';
import { runRoomCommand, type RoomCommand } from '../src/admin/rooms';
import type { OccupantSummary, RoomSummary } from '../modules/muc/service';
import { adminRequest, ServerNotRunning } from '../src/admin/admin-client';
import type { AdminRequest, SessionInfo, StatusResult } from '../src/admin/protocol';
import { packageVersion } from '../src/version';
import pino from 'pino';

const program = new Command();
program
  .name('xmppd')
  .description('An XMPP server on SQLite')
  .version(packageVersion())
  .option('-c, --config <file>', 'configuration file (default: $XMPPD_CONFIG or config/xmppd.yaml)')
  .showHelpAfterError();

function config(cmd: Command): Config {
  const { config: file } = cmd.optsWithGlobals() as { config?: string };
  return loadConfig(file);
}

program
  .command('start')
  .description('run the server in the foreground (stop with Ctrl-C or SIGTERM)')
  .action(async (_opts, cmd: Command) => {
    const cfg = config(cmd);
    const log = createLogger(cfg.log.level, cfg.log.format);
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
    const server = await XmppServer.start(cfg, log);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      server.stop().then(() => process.exit(0), (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });

/**
 * Runs an account or room command on the running server (so its hooks and sessions see it),
 * or on the database directly when no server is running.
 */
async function accountCommand(cmd: Command, req: AdminRequest, offline: (core: Core) => Promise<unknown>): Promise<unknown> {
  const cfg = config(cmd);
  try {
    return unwrap(await adminRequest(adminSocketPath(cfg), req));
  } catch (err) {
    if (!(err instanceof ServerNotRunning)) throw err;
  }
  const core = await Core.create({
    domains: cfg.domains,
    database: databasePath(cfg),
    log: pino({ level: 'warn' }, pino.destination(2)),
    modules: selectModules(cfg),
  });
  try {
    return await offline(core);
  } finally {
    await core.close();
  }
}

/** An account command whose answer is the account's normalised JID. */
async function accountJid(cmd: Command, req: AdminRequest, offline: (core: Core) => Promise<{ toString(): string }>): Promise<string> {
  const r = await accountCommand(cmd, req, async (core) => ({ jid: (await offline(core)).toString() }));
  return (r as { jid: string }).jid;
}

async function serverCommand(cmd: Command, req: AdminRequest): Promise<unknown> {
  return unwrap(await adminRequest(adminSocketPath(config(cmd)), req));
}

function unwrap(res: { ok: true; result: unknown } | { ok: false; error: string }): unknown {
  if (!res.ok) throw new UserError(res.error);
  return res.result;
}

const passwordOption = new Option('-p, --password <password>', 'the password (otherwise prompted, or read from standard input)');

const user = program.command('user').description('manage accounts (works with the server running or stopped)');

user
  .command('add <jid>')
  .description('create an account, e.g. xmppd user add alice@localhost')
  .addOption(passwordOption)
  .action(async (jid: string, opts: { password?: string }, cmd: Command) => {
    const password = await readPassword(opts.password, true);
    console.log(`created ${await accountJid(cmd, { command: 'user.add', args: { jid, password } }, (core) => core.createUser(jid, password))}`);
  });

user
  .command('del <jid>')
  .description('delete an account and everything stored for it')
  .action(async (jid: string, _opts, cmd: Command) => {
    console.log(`deleted ${await accountJid(cmd, { command: 'user.del', args: { jid } }, (core) => core.deleteUser(jid))}`);
  });

user
  .command('passwd <jid>')
  .description("change an account's password")
  .addOption(passwordOption)
  .action(async (jid: string, opts: { password?: string }, cmd: Command) => {
    const password = await readPassword(opts.password, true);
    console.log(`password changed for ${await accountJid(cmd, { command: 'user.passwd', args: { jid, password } }, (core) => core.setPassword(jid, password))}`);
  });

user
  .command('list [domain]')
  .description('list accounts, optionally of one domain')
  .action(async (domain: string | undefined, _opts, cmd: Command) => {
    const list = (await accountCommand(cmd, { command: 'user.list', args: { domain } }, (core) => core.listUsers(domain))) as string[];
    for (const j of list) console.log(j);
  });

user
  .command('check <jid>')
  .description('exit 0 if the account exists (and, with --password, if the password is right)')
  .addOption(passwordOption)
  .action(async (jid: string, opts: { password?: string }, cmd: Command) => {
    const r = (await accountCommand(cmd, { command: 'user.check', args: { jid, password: opts.password } },
      (core) => checkUser(core, jid, opts.password))) as { jid: string; exists: boolean; passwordOk?: boolean };
    if (!r.exists) throw new UserError(`user ${r.jid} does not exist`);
    if (r.passwordOk === false) throw new UserError(`wrong password for ${r.jid}`);
    console.log(r.passwordOk ? `${r.jid} exists and the password is right` : `${r.jid} exists`);
  });

const room = program.command('room').description('manage group chat rooms (XEP-0045)');

/** A room command on the running server, or on the database when it is stopped (persistent rooms). */
function roomCommand(cmd: Command, r: RoomCommand): Promise<unknown> {
  return accountCommand(cmd, { command: r.command, room: r }, (core) => runRoomCommand(core, r));
}

room
  .command('list')
  .description('list rooms (with the server stopped: the persistent ones)')
  .action(async (_opts, cmd: Command) => {
    const rooms = (await roomCommand(cmd, { command: 'room.list' })) as RoomSummary[];
    if (rooms.length === 0) console.log('no rooms');
    for (const r of rooms) {
      const flags = [r.persistent ? 'persistent' : 'temporary', r.public ? 'public' : 'hidden', r.membersOnly ? 'members-only' : 'open',
        r.passwordProtected ? 'password' : '', r.moderated ? 'moderated' : '', r.locked ? 'locked' : ''].filter(Boolean).join(',');
      console.log(`${r.jid}\t${r.occupants} occupants\t${flags}${r.name ? `\t"${r.name}"` : ''}`);
    }
  });

room
  .command('create <jid>')
  .description('create a room, e.g. xmppd room create tea@conference.localhost --name "Tea room"')
  .option('--temporary', 'vanish when the last occupant leaves (default: persistent)')
  .option('--name <name>', 'room name')
  .option('--description <text>', 'room description')
  .option('--hidden', 'not listed in the service discovery (default: public)')
  .option('--members-only', 'only members may enter')
  .option('--moderated', 'only occupants with voice may speak')
  .option('--password <password>', 'password to enter')
  .option('--max-users <n>', 'most occupants at once')
  .option('--owner <jid>', 'account that owns the room')
  .action(async (jid: string, o: { temporary?: boolean; name?: string; description?: string; hidden?: boolean; membersOnly?: boolean;
    moderated?: boolean; password?: string; maxUsers?: string; owner?: string }, cmd: Command) => {
    let maxUsers: number | undefined;
    if (o.maxUsers !== undefined) {
      maxUsers = Number(o.maxUsers);
      if (!Number.isInteger(maxUsers) || maxUsers <= 0) throw new UserError(`--max-users must be a whole number above 0, got "${o.maxUsers}"`);
    }
    const r = (await roomCommand(cmd, { command: 'room.create', jid, options: {
      persistent: !o.temporary, name: o.name, description: o.description, public: !o.hidden, membersOnly: o.membersOnly === true,
      moderated: o.moderated === true, password: o.password, maxUsers, owner: o.owner,
    } })) as RoomSummary;
    console.log(`created ${r.jid}`);
  });

room
  .command('destroy <jid>')
  .description('destroy a room; occupants are told why')
  .option('-r, --reason <text>', 'reason sent to the occupants')
  .action(async (jid: string, o: { reason?: string }, cmd: Command) => {
    await roomCommand(cmd, { command: 'room.destroy', jid, reason: o.reason });
    console.log(`destroyed ${jid}`);
  });

room
  .command('occupants <jid>')
  .description("list a room's occupants with their roles and affiliations")
  .action(async (jid: string, _o, cmd: Command) => {
    const list = (await roomCommand(cmd, { command: 'room.occupants', jid })) as OccupantSummary[];
    if (list.length === 0) console.log('no occupants');
    for (const o of list) console.log(`${o.nick}\t${o.jid}\t${o.role}\t${o.affiliation}`);
  });

program
  .command('status')
  .description('show whether the server runs, its ports, sessions and memory')
  .action(async (_opts, cmd: Command) => {
    const s = (await serverCommand(cmd, { command: 'status' })) as StatusResult;
    console.log(`xmppd ${s.version} running (pid ${s.pid}, up ${s.uptimeSeconds}s)`);
    console.log(`domains:     ${s.domains.join(', ')}`);
    console.log(`ports:       ${Object.entries(s.ports).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    console.log(`sessions:    ${s.sessions} bound, ${s.connections} connections`);
    console.log(`memory:      ${(s.rssBytes / 1048576).toFixed(1)} MiB RSS`);
    console.log(`modules:     ${s.modules.join(', ')}`);
  });

program
  .command('sessions')
  .description('list online sessions')
  .action(async (_opts, cmd: Command) => {
    const list = (await serverCommand(cmd, { command: 'sessions' })) as SessionInfo[];
    if (list.length === 0) console.log('no sessions');
    for (const s of list) {
      const state = s.available ? s.show ?? 'available' : 'not available';
      console.log(`${s.jid}\t${s.address}\tpriority ${s.priority}\t${state}`);
    }
  });

program
  .command('kick <fulljid>')
  .description('disconnect one session, e.g. xmppd kick alice@localhost/phone')
  .option('-r, --reason <text>', 'text sent to the client with the stream error')
  .action(async (jid: string, opts: { reason?: string }, cmd: Command) => {
    await serverCommand(cmd, { command: 'kick', args: { jid, reason: opts.reason } });
    console.log(`kicked ${jid}`);
  });

/** From the flag, else a hidden prompt (asked twice when new) on a terminal, else the first line of stdin. */
async function readPassword(given: string | undefined, confirm: boolean): Promise<string> {
  if (given !== undefined) return given;
  if (!process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    throw new UserError('no password given: use --password, or pipe it on standard input');
  }
  const first = await prompt('Password: ');
  if (confirm && (await prompt('Again: ')) !== first) throw new UserError('the two passwords differ');
  return first;
}

function prompt(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WritableStream };
    out._writeToOutput = (s: string) => {
      if (s.startsWith(question)) out.output.write(question);
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof UserError || err instanceof ConfigError || err instanceof ServerNotRunning) {
    console.error(`xmppd: ${err.message}`);
  } else {
    console.error(`xmppd: ${(err as Error).stack ?? String(err)}`);
  }
  process.exit(1);
});
