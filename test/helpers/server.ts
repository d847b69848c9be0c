import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, type Config } from '../../src/config';
import { silentLogger } from '../../src/log';
import { XmppServer } from '../../src/server';

export function tempDir(prefix = 'xmppd-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestServer {
  server: XmppServer;
  config: Config;
  dataDir: string;
  port: number;
  tlsPort: number;
  /** The web listener's plain HTTP port (WebSocket at ws://127.0.0.1:<httpPort>/xmpp-websocket). */
  httpPort: number;
  /** Its HTTPS port. */
  httpsPort: number;
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/**
 * The whole server on loopback with ephemeral ports and a fresh data folder (real SQLite
 * file, generated certificate). `raw` is merged into the config as a YAML file would be.
 */
export async function startTestServer(raw: Record<string, unknown> = {}, users: Record<string, string> = {}, dataDir = tempDir()): Promise<TestServer> {
  const config = buildConfig({
    domains: ['localhost'],
    dataDir,
    log: { level: 'silent' },
    c2s: { host: '127.0.0.1', port: 0, tlsPort: 0 },
    auth: { failureDelayMs: 0 },
    ...raw,
    // Ephemeral web ports too, unless a test says otherwise (null turns one off).
    http: { host: '127.0.0.1', port: 0, tlsPort: 0, ...(raw.http as Record<string, unknown> | undefined) },
  }, dataDir);
  const server = await XmppServer.start(config, silentLogger());
  for (const [jid, password] of Object.entries(users)) {
    if (!(await server.core.accounts.exists(jid))) await server.core.createUser(jid, password);
  }
  return {
    server,
    config,
    dataDir,
    port: server.port('c2s'),
    tlsPort: server.port('c2sTls'),
    get httpPort() { return server.port('http'); },
    get httpsPort() { return server.port('https'); },
    async stop(opts = {}) {
      await server.stop();
      if (!opts.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
