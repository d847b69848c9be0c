import { Core } from '../../src/core';
import { silentLogger } from '../../src/log';
import { Jid } from '../../src/jid';
import type { Element } from '../../src/xml/element';
import type { Session } from '../../src/session';
import type { StreamError } from '../../src/errors';
import type { XmppModule } from '../../src/module';

/**
 * A bound client without a socket: everything else (router, hooks, module host, SQLite
 * with real migrations) is the real server core.
 */
export class FakeSession implements Session {
  readonly id: string;
  readonly remoteAddress = '127.0.0.1';
  presence: Element | undefined;
  priority = 0;
  rosterRequested = false;
  readonly data = new Map<string, unknown>();
  readonly sent: Element[] = [];
  closed = false;
  closeError: StreamError | undefined;

  constructor(readonly jid: Jid, private readonly host: TestHost) {
    this.id = 'fake-' + jid.toString();
  }

  send(stanza: Element): void {
    if (!this.closed) this.sent.push(stanza);
  }

  close(error?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = error;
    void this.host.core.unbind(this, error);
  }

  /** The client sends a stanza; resolves when the server has fully handled it. */
  async receive(stanza: Element): Promise<void> {
    await this.host.core.router.fromClient(this, stanza);
    await settle();
  }

  /** Takes and returns what the server sent so far. */
  take(): Element[] {
    return this.sent.splice(0);
  }
}

export class TestHost {
  constructor(readonly core: Core, readonly domain: string) {}

  /** Binds a session for a full JID (the account is created with password 'secret' if missing). */
  async connect(fullJid: string): Promise<FakeSession> {
    const jid = Jid.parse(fullJid);
    if (!(await this.core.accounts.exists(jid.bareString))) await this.core.createUser(jid.bareString, 'secret');
    const s = new FakeSession(jid, this);
    await this.core.bind(s);
    await settle();
    return s;
  }

  async disconnect(s: FakeSession): Promise<void> {
    s.closed = true;
    await this.core.unbind(s);
    await settle();
  }

  async close(): Promise<void> {
    await this.core.close();
  }
}

export async function createTestHost(opts: {
  modules: XmppModule[];
  options?: Record<string, Record<string, unknown>>;
  domain?: string;
  database?: string;
}): Promise<TestHost> {
  const domain = opts.domain ?? 'example.test';
  const core = await Core.create({
    domains: [domain],
    database: opts.database ?? ':memory:',
    log: silentLogger(),
    modules: opts.modules.map((m) => ({ module: m, options: opts.options?.[m.name] })),
  });
  return new TestHost(core, domain);
}

/** Lets queued promise callbacks and timers of 0 ms run. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
