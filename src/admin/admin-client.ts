import { createConnection } from 'node:net';
import type { AdminRequest, AdminResponse } from './protocol';

export class ServerNotRunning extends Error {}

/** Sends one request to the running server's admin socket. Throws ServerNotRunning when nothing listens. */
export function adminRequest(path: string, req: AdminRequest, timeoutMs = 10_000): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not answer on ${path} within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(JSON.stringify(req) + '\n'));
    socket.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as AdminResponse);
      } catch {
        reject(new Error('the server sent an unreadable answer'));
      }
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new ServerNotRunning(`no server is running (no admin socket at ${path})`));
      else if (err.code === 'EACCES') reject(new Error(`permission denied on ${path}: run the command as the user that runs the server`));
      else reject(err);
    });
  });
}
