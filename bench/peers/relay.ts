/** The relay (bench/relay.ts) as a peer: the machine's ceiling, started like the servers. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../lib/proc';
import { spawnLogged, terminate, waitForXmpp, type Instance, type Peer, type StartOptions } from './types';

const RELAY = join(__dirname, '..', 'relay.js');

export const relay: Peer = {
  name: 'relay',
  available() {
    return existsSync(RELAY) ? true : `${RELAY} is missing: run npx tsc -p . first`;
  },
  async start(opts: StartOptions): Promise<Instance> {
    const port = await freePort();
    const logFile = join(opts.workDir, 'relay.log');
    const child = spawnLogged(
      'prlimit',
      [`--nofile=${opts.fileLimit}:${opts.fileLimit}`, '--', process.execPath, RELAY, '--port', String(port), '--host', '127.0.0.1', '--domain', 'localhost'],
      { cwd: opts.workDir, logFile },
    );
    await waitForXmpp('127.0.0.1', port, 'localhost', child, logFile);
    return {
      server: 'relay',
      version: `relay (bench/relay.ts), node ${process.version}`,
      host: '127.0.0.1',
      port,
      domain: 'localhost',
      pid: child.pid!,
      logFile,
      stop: () => terminate(child),
    };
  },
};
