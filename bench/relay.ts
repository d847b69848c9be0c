/**
 * The relay: the ceiling for this machine. A minimal Node program that accepts the load
 * generator's traffic and does the least a server must do with it: answer the login handshake
 * (canned stream headers and features; PLAIN accepted without a check; SCRAM-SHA-1 computed for
 * real against keys derived once per user from the benchmark password, as a server that stores
 * SCRAM keys would; bind and session answered), answer every iq get with an empty result, drop
 * presence, and forward each <message/> to the socket of the bare JID in its 'to' attribute,
 * with a from attribute inserted; what one read produces for one destination goes out in one
 * write. No XML tree, no storage, no routing rules, no limits.
 *
 *   node dist/bench/relay.js --port 5222 [--host 127.0.0.1] [--domain localhost]
 */
import { createServer, type Socket } from 'node:net';
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { StanzaReader, attr, attrRange, nameIs } from './lib/reader';
import { scramAttrs, textOf } from './lib/client';
import { passwordFor } from './peers/types';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const ITERATIONS = 4096;

interface Keys {
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}
const keyCache = new Map<string, Keys>();
function keysFor(user: string): Keys {
  let k = keyCache.get(user);
  if (!k) {
    const salt = createHash('sha1').update(`relay-salt-${user}`).digest().subarray(0, 16);
    const salted = pbkdf2Sync(passwordFor(user), salt, ITERATIONS, 20, 'sha1');
    const clientKey = createHmac('sha1', salted).update('Client Key').digest();
    k = { salt, storedKey: createHash('sha1').update(clientKey).digest(), serverKey: createHmac('sha1', salted).update('Server Key').digest() };
    keyCache.set(user, k);
  }
  return k;
}

const sockets = new Map<string, Socket>();

/**
 * Messages forwarded while handling one chunk are gathered per destination and written at the
 * end of that chunk with one write each (what a server that batches its output does).
 */
const pending = new Map<Socket, Buffer[]>();
function queue(dest: Socket, data: Buffer): void {
  const list = pending.get(dest);
  if (list) list.push(data);
  else pending.set(dest, [data]);
}
function flush(): void {
  for (const [dest, list] of pending) {
    if (!dest.destroyed) dest.write(list.length === 1 ? list[0]! : Buffer.concat(list));
  }
  pending.clear();
}
const MESSAGE_OPEN = Buffer.from('<message');

function serve(socket: Socket, domain: string): void {
  socket.setNoDelay(true);
  let authedUser: string | undefined;
  let bare: string | undefined;
  let full: string | undefined;
  let fromPrefix: Buffer | undefined;
  let scram: { user: string; clientFirstBare: string; serverFirst: string; nonce: string } | undefined;
  const id = randomBytes(6).toString('hex');

  const header = (): string =>
    `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' from='${domain}' id='${id}' version='1.0'>`;

  const reader = new StanzaReader({
    streamStart: () => {
      if (authedUser === undefined) {
        socket.write(
          `${header()}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>` +
            `<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>`,
        );
      } else {
        socket.write(
          `${header()}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>` +
            `<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>`,
        );
      }
    },
    streamEnd: () => {
      socket.end('</stream:stream>');
    },
    stanza: (buf, start, end) => {
      if (nameIs(buf, start, 'message')) {
        if (!fromPrefix) return;
        const r = attrRange(buf, start, 'to', end);
        if (!r) return;
        let e = buf.indexOf(0x2f /* / */, r[0]);
        if (e < 0 || e > r[1]) e = r[1];
        const to = buf.toString('utf8', r[0], e);
        const dest = sockets.get(to);
        if (dest) queue(dest, Buffer.concat([fromPrefix, buf.subarray(start + MESSAGE_OPEN.length, end)]));
        return;
      }
      if (nameIs(buf, start, 'presence')) return;
      if (nameIs(buf, start, 'iq')) {
        const type = attr(buf, start, 'type', end);
        const iqId = attr(buf, start, 'id', end) ?? '';
        const s = buf.toString('utf8', start, end);
        if (type === 'set' && s.includes('urn:ietf:params:xml:ns:xmpp-bind')) {
          const m = /<resource>([^<]*)<\/resource>/.exec(s);
          bare = `${authedUser}@${domain}`;
          full = `${bare}/${m?.[1] || id}`;
          fromPrefix = Buffer.from(`<message from='${full}'`);
          sockets.set(bare, socket);
          socket.write(`<iq type='result' id='${iqId}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>${full}</jid></bind></iq>`);
        } else if (type === 'get' || type === 'set') {
          socket.write(`<iq type='result' id='${iqId}'${full ? ` to='${full}'` : ''}/>`);
        }
        return;
      }
      const s = buf.toString('utf8', start, end);
      if (nameIs(buf, start, 'auth')) {
        const mech = attr(buf, start, 'mechanism', end);
        const data = Buffer.from(textOf(s), 'base64').toString();
        if (mech === 'PLAIN') {
          const parts = data.split('\u0000');
          authedUser = parts[1] ?? '';
          socket.write(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`);
        } else if (mech === 'SCRAM-SHA-1') {
          const clientFirstBare = data.slice(data.indexOf(',', data.indexOf(',') + 1) + 1);
          const a = scramAttrs(clientFirstBare);
          const user = a.get('n') ?? '';
          const nonce = `${a.get('r') ?? ''}${randomBytes(12).toString('base64')}`;
          const serverFirst = `r=${nonce},s=${keysFor(user).salt.toString('base64')},i=${ITERATIONS}`;
          scram = { user, clientFirstBare, serverFirst, nonce };
          socket.write(`<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${Buffer.from(serverFirst).toString('base64')}</challenge>`);
        } else {
          socket.write(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>`);
        }
        return;
      }
      if (nameIs(buf, start, 'response') && scram) {
        const final = Buffer.from(textOf(s), 'base64').toString();
        const p = final.lastIndexOf(',p=');
        const withoutProof = final.slice(0, p);
        const proof = Buffer.from(final.slice(p + 3), 'base64');
        const keys = keysFor(scram.user);
        const authMessage = `${scram.clientFirstBare},${scram.serverFirst},${withoutProof}`;
        const clientSignature = createHmac('sha1', keys.storedKey).update(authMessage).digest();
        const clientKey = Buffer.allocUnsafe(20);
        for (let k = 0; k < 20; k++) clientKey[k] = (proof[k] ?? 0) ^ clientSignature[k]!;
        const ok = proof.length === 20 && timingSafeEqual(createHash('sha1').update(clientKey).digest(), keys.storedKey);
        if (!ok || !withoutProof.includes(`r=${scram.nonce}`)) {
          socket.write(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`);
          return;
        }
        const v = createHmac('sha1', keys.serverKey).update(authMessage).digest('base64');
        authedUser = scram.user;
        scram = undefined;
        socket.write(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${Buffer.from(`v=${v}`).toString('base64')}</success>`);
      }
    },
  });

  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    flush();
  });
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    if (bare !== undefined && sockets.get(bare) === socket) sockets.delete(bare);
  });
}

function main(): void {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string): string => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
  };
  const port = Number(opt('port', '5222'));
  const host = opt('host', '127.0.0.1');
  const domain = opt('domain', 'localhost');
  const server = createServer((s) => serve(s, domain));
  server.listen({ port, host, backlog: 4096 }, () => process.stdout.write(`relay listening on ${host}:${port}\n`));
  const stop = () => {
    server.close();
    for (const s of sockets.values()) s.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
