import { Core } from '../../src/core';
import { silentLogger } from '../../src/log';
import { StreamError } from '../../src/errors';
import type { BoshOptions } from '../../src/net/bosh/service';
import { BoshClient, NS_HTTPBIND, post, startBoshServer, type BoshTestServer, type BoshReply } from '../helpers/bosh-server';

let core: Core;
const servers: BoshTestServer[] = [];

beforeAll(async () => {
  core = await Core.create({ domains: ['localhost'], database: ':memory:', log: silentLogger(), modules: [] });
});

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

afterAll(async () => {
  await core.close();
});

async function server(opts: BoshOptions = {}): Promise<BoshTestServer> {
  const s = await startBoshServer(core, opts);
  servers.push(s);
  return s;
}

function condition(r: BoshReply): string | undefined {
  return r.body?.attrs.type === 'terminate' ? r.body.attrs.condition ?? '(none)' : undefined;
}

describe('BOSH over HTTP: bad input', () => {
  test('bodies that are not a <body/> in the httpbind namespace: 400 with a bad-request body', async () => {
    const s = await server();
    for (const data of [
      'hello',
      `<foo xmlns='${NS_HTTPBIND}' rid='1'/>`,
      `<body xmlns='urn:wrong' rid='1'/>`,
      `<body xmlns='${NS_HTTPBIND}' rid='1'><unclosed></body>`,
      `<!DOCTYPE body [<!ENTITY a 'b'>]><body xmlns='${NS_HTTPBIND}' rid='1'/>`,
    ]) {
      const r = await post(s.url, data);
      expect([data, r.status]).toEqual([data, 400]);
      expect(condition(r)).toBe('bad-request');
      expect(r.headers.get('content-type')).toBe('text/xml; charset=utf-8');
    }
    expect(s.service.connectionCount).toBe(0);
  });

  test('an unparseable body for a known sid ends that session', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect();
    const r = await post(s.url, `<body xmlns='${NS_HTTPBIND}' sid='${c.sid}' rid='${c.rid}'><a></body>`);
    expect(r.status).toBe(400);
    expect(s.service.connectionCount).toBe(0);
  });

  test('an unknown sid is item-not-found with HTTP 200 (XEP-0124 §17.2)', async () => {
    const s = await server();
    const r = await post(s.url, `<body xmlns='${NS_HTTPBIND}' sid='nope' rid='5'/>`);
    expect(r.status).toBe(200);
    expect(condition(r)).toBe('item-not-found');
  });

  test('a creation request without a rid is bad-request', async () => {
    const s = await server();
    const r = await post(s.url, `<body xmlns='${NS_HTTPBIND}' to='localhost' ver='1.11' wait='60' hold='1'/>`);
    expect(r.status).toBe(200);
    expect(condition(r)).toBe('bad-request');
  });

  test('a request without a valid rid is bad-request and ends the session', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect();
    const r = await post(s.url, `<body xmlns='${NS_HTTPBIND}' sid='${c.sid}' rid='x'/>`);
    expect(condition(r)).toBe('bad-request');
    expect(s.service.connectionCount).toBe(0);
  });

  test('legacy clients (no ver) get the old HTTP codes for binding errors', async () => {
    const s = await server();
    expect((await post(s.url, `<body xmlns='${NS_HTTPBIND}' to='localhost' wait='60' hold='1'/>`)).status).toBe(400);
    const c = new BoshClient(s.url);
    await c.connect({ ver: undefined });
    expect(c.sid).not.toBe('');
    const r = await c.post(c.body({}, '', c.rid + 5));
    expect(r.status).toBe(404);
    expect(condition(r)).toBe('item-not-found');
  });

  test('a body over the size limit: 413, policy-violation, and the session ends', async () => {
    const s = await server({ maxBodyBytes: 2000 });
    const c = new BoshClient(s.url);
    await c.connect();
    const big = c.body({}, `<message xmlns='jabber:client' to='a@localhost'><body>${'x'.repeat(3000)}</body></message>`);
    const r = await post(s.url, big);
    expect(r.status).toBe(413);
    expect(condition(r)).toBe('policy-violation');
    expect(s.service.connectionCount).toBe(0);
    // Also when the size is only known while reading (no Content-Length: chunked upload).
    const c2 = new BoshClient(s.url);
    await c2.connect();
    const stream = new ReadableStream({
      start(ctrl) {
        ctrl.enqueue(new TextEncoder().encode(c2.body({}, `<message xmlns='jabber:client'><body>${'y'.repeat(3000)}</body></message>`)));
        ctrl.close();
      },
    });
    const r2 = await fetch(s.url, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(r2.status).toBe(413);
    expect(s.service.connectionCount).toBe(0);
  });
});

describe('BOSH over HTTP: methods and CORS', () => {
  test('OPTIONS preflight and CORS headers', async () => {
    const s = await server();
    const r = await fetch(s.url, { method: 'OPTIONS', headers: { Origin: 'https://web.example', 'Access-Control-Request-Method': 'POST' } });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    expect(r.headers.get('access-control-allow-headers')).toBe('Content-Type');
    expect(r.headers.get('access-control-max-age')).toBe('86400');
  });

  test('allowed origins: only a listed origin is echoed', async () => {
    const s = await server({ allowedOrigins: ['https://chat.example'] });
    const ok = await fetch(s.url, { method: 'OPTIONS', headers: { Origin: 'https://chat.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://chat.example');
    expect(ok.headers.get('vary')).toBe('Origin');
    const no = await post(s.url, `<body xmlns='${NS_HTTPBIND}' sid='x' rid='1'/>`, { Origin: 'https://evil.example' });
    expect(no.headers.get('access-control-allow-origin')).toBeNull();
    expect(condition(no)).toBe('item-not-found');
  });

  test('GET gets a short help text; other methods 405', async () => {
    const s = await server();
    const r = await fetch(s.url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await r.text()).toMatch(/BOSH/);
    const put = await fetch(s.url, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS');
  });

  test("the session's 'content' attribute sets the response Content-Type", async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    const r = await c.connect({ content: 'text/plain; charset=utf-8' });
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect((await c.send('', { type: 'terminate' })).headers.get('content-type')).toBe('text/plain; charset=utf-8');
  });
});

describe('BOSH service shutdown', () => {
  test('close(system-shutdown) answers held requests with system-shutdown; new sessions are refused', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 10 });
    const held = c.send();
    await new Promise((r) => setTimeout(r, 50));
    await s.service.close(new StreamError('system-shutdown', 'bye'));
    expect(condition(await held)).toBe('system-shutdown');
    expect(s.service.connectionCount).toBe(0);
    expect(condition(await new BoshClient(s.url).connect())).toBe('system-shutdown');
  });

  test('close() without an error ends sessions with a plain terminate', async () => {
    const s = await server();
    const c = new BoshClient(s.url);
    await c.connect({ wait: 10 });
    const held = c.send();
    await new Promise((r) => setTimeout(r, 50));
    await s.service.close();
    expect(condition(await held)).toBe('(none)');
  });
});
