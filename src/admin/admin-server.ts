import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import type { Logger } from 'pino';
import { LISTENER_NAMES, type XmppServer } from '../server';
import { StreamError } from '../errors';
import { UserError } from '../core';
import { Jid } from '../jid';
import { verifyPassword } from '../sasl';
import { packageVersion } from '../version';
import type { AdminRequest, AdminResponse, SessionInfo, StatusResult } from './protocol';
import { runRoomCommand } from './rooms';

/**
 * A UNIX socket in the data folder, readable by the server's owner only, through which the
 * CLI acts on the running server (sessions, kick, accounts with hooks firing in-process).
 */
export class AdminServer {
  private server: Server | undefined;

  constructor(private readonly xmpp: XmppServer, private readonly path: string, private readonly log: Logger) {}

  async listen(): Promise<void> {
    if (existsSync(this.path)) {
      if (await isAlive(this.path)) throw new Error(`another xmppd is already running with this data folder (admin socket ${this.path} answers)`);
      unlinkSync(this.path); // left over from a crash
    }
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private serve(socket: Socket): void {
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 65536) return socket.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.answer(line).then((res) => socket.write(JSON.stringify(res) + '\n'));
      }
    });
    socket.on('error', () => socket.destroy());
  }

  private async answer(line: string): Promise<AdminResponse> {
    let req: AdminRequest;
    try {
      req = JSON.parse(line) as AdminRequest;
    } catch {
      return { ok: false, error: 'bad request: not JSON' };
    }
    try {
      return { ok: true, result: await this.run(req) };
    } catch (err) {
      if (err instanceof UserError) return { ok: false, error: err.message };
      this.log.error({ err, command: req.command }, 'admin command failed');
      return { ok: false, error: `internal error: ${(err as Error).message}` };
    }
  }

  private async run(req: AdminRequest): Promise<unknown> {
    const { command, args = {} } = req;
    const core = this.xmpp.core;
    const need = (name: string): string => {
      const v = args[name];
      if (v === undefined || v === '') throw new UserError(`missing ${name}`);
      return v;
    };
    switch (command) {
      case 'status': {
        const ports: Record<string, number> = {};
        for (const name of LISTENER_NAMES) {
          try { ports[name] = this.xmpp.port(name); } catch { /* listener off */ }
        }
        const result: StatusResult = {
          pid: process.pid,
          version: packageVersion(),
          uptimeSeconds: Math.round((Date.now() - this.xmpp.startedAt) / 1000),
          domains: [...core.domains],
          sessions: core.sessions.size,
          connections: this.xmpp.connectionCount,
          ports,
          modules: core.modules.names(),
          rssBytes: process.memoryUsage().rss,
        };
        return result;
      }
      case 'sessions': {
        const out: SessionInfo[] = [];
        for (const s of core.sessions.all()) {
          out.push({
            jid: s.jid.toString(), address: s.remoteAddress, priority: s.priority, available: s.presence !== undefined,
            show: s.presence?.getChildText('show'),
          });
        }
        return out.sort((a, b) => a.jid.localeCompare(b.jid));
      }
      case 'kick': {
        const jid = Jid.tryParse(need('jid'));
        if (!jid || jid.resource === '') throw new UserError(`"${args.jid}" is not a full JID (user@domain/resource)`);
        const s = core.sessions.get(jid);
        if (!s) throw new UserError(`no session ${jid} is online (see: xmppd sessions)`);
        s.close(new StreamError('policy-violation', args.reason || 'Disconnected by an administrator'));
        return { kicked: jid.toString() };
      }
      case 'user.add': return { jid: (await core.createUser(need('jid'), need('password'))).toString() };
      case 'user.del': return { jid: (await core.deleteUser(need('jid'))).toString() };
      case 'user.passwd': return { jid: (await core.setPassword(need('jid'), need('password'))).toString() };
      case 'user.list': return core.listUsers(args.domain);
      case 'user.check': return checkUser(core, need('jid'), args.password);
      case 'room.list': case 'room.create': case 'room.destroy': case 'room.occupants':
        if (!req.room || req.room.command !== command) throw new UserError('bad request: room arguments missing');
        return runRoomCommand(core, req.room);
      default:
        throw new UserError(`unknown command ${String(command)}`);
    }
  }
}

/** Whether the account exists and, when a password is given, whether it is right. */
export async function checkUser(core: XmppServer['core'], input: string, password?: string): Promise<{ jid: string; exists: boolean; passwordOk?: boolean }> {
  const jid = core.accountJid(input);
  const exists = await core.accounts.exists(jid.bareString);
  if (password === undefined || !exists) return { jid: jid.toString(), exists };
  const creds = await core.accounts.credentials(jid.bareString, 'sha256');
  let passwordOk = false;
  try {
    passwordOk = creds !== undefined && verifyPassword(creds, 'sha256', password);
  } catch {
    passwordOk = false;
  }
  return { jid: jid.toString(), exists, passwordOk };
}

function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}
