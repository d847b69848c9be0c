// The web listener over real sockets: routing, host-meta (XEP-0156), health, and the
// route registry that BOSH and the web chat plug into.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { startTestServer, type TestServer } from '../helpers/server';
import { WsClient } from '../helpers/ws-client';

interface Reply { status: number; headers: IncomingHttpHeaders; body: string }

function get(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; tls?: boolean; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = (opts.tls ? httpsRequest : httpRequest)({
      host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, rejectUnauthorized: false, agent: false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('HTTP listener', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ http: { trustedProxies: ['127.0.0.1'] } });
  });
  afterAll(() => t.stop());

  it('serves host-meta as XRD with the BOSH and WebSocket endpoints as the request came in, with CORS', async () => {
    const r = await get(t.httpPort, '/.well-known/host-meta');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/xrd+xml; charset=utf-8');
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.body).toBe(
      "<?xml version='1.0' encoding='utf-8'?>\n" +
      '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">' +
      `<Link rel="urn:xmpp:alt-connections:xbosh" href="http://127.0.0.1:${t.httpPort}/http-bind"/>` +
      `<Link rel="urn:xmpp:alt-connections:websocket" href="ws://127.0.0.1:${t.httpPort}/xmpp-websocket"/>` +
      '</XRD>\n');
  });

  it('serves host-meta.json (XEP-0156) and says wss:// behind a TLS-terminating trusted proxy and on the HTTPS port', async () => {
    const r = await get(t.httpPort, '/.well-known/host-meta.json', { headers: { Host: 'chat.example.org', 'X-Forwarded-Proto': 'https' } });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(JSON.parse(r.body)).toEqual({ links: [
      { rel: 'urn:xmpp:alt-connections:xbosh', href: 'https://chat.example.org/http-bind' },
      { rel: 'urn:xmpp:alt-connections:websocket', href: 'wss://chat.example.org/xmpp-websocket' },
    ] });

    const direct = await get(t.httpsPort, '/.well-known/host-meta.json', { tls: true, headers: { Host: 'xmpp.example.org:5443' } });
    expect(JSON.parse(direct.body).links.map((l: { href: string }) => l.href)).toEqual(['https://xmpp.example.org:5443/http-bind', 'wss://xmpp.example.org:5443/xmpp-websocket']);

    const preflight = await get(t.httpPort, '/.well-known/host-meta', { method: 'OPTIONS', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'GET' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
  });

  it('ignores X-Forwarded-Proto from a peer that is not a trusted proxy', async () => {
    const other = await startTestServer();
    try {
      const r = await get(other.httpPort, '/.well-known/host-meta.json', { headers: { Host: 'chat.example.org', 'X-Forwarded-Proto': 'https' } });
      expect(JSON.parse(r.body).links.map((l: { href: string }) => l.href)).toEqual(['http://chat.example.org/http-bind', 'ws://chat.example.org/xmpp-websocket']);
    } finally {
      await other.stop();
    }
  });

  it('routes added paths by whole segments, with the client as the trusted proxy reports it', async () => {
    const seen: string[] = [];
    const remove = t.server.http!.addRoute('/custom', (req, res, ctx) => {
      seen.push(`${req.method} ${ctx.url.pathname} ${ctx.client.address} ${ctx.client.secure}`);
      res.writeHead(200, { 'Content-Type': 'text/xml' }).end('<ok/>');
    });
    try {
      expect((await get(t.httpPort, '/custom', { method: 'POST', body: '<x/>', headers: { 'X-Forwarded-For': '192.0.2.44' } })).status).toBe(200);
      expect((await get(t.httpPort, '/custom/', { method: 'POST', body: '<x/>' })).status).toBe(200);
      expect((await get(t.httpPort, '/customer')).status).toBe(404);
      expect(seen).toEqual(['POST /custom 192.0.2.44 true', 'POST /custom/ 127.0.0.1 true']);
      expect(() => t.server.http!.addRoute('/custom', () => undefined)).toThrow('already taken');
      expect(() => t.server.http!.addRoute('/http-bind', () => undefined)).toThrow('already taken');
    } finally {
      remove();
    }
    expect((await get(t.httpPort, '/custom', { method: 'POST' })).status).toBe(404);
  });

  it('answers 404 for unknown paths, 405 with Allow for wrong methods, 426 for a plain GET of the WebSocket endpoint', async () => {
    const missing = await get(t.httpPort, '/nothing-here');
    expect(missing.status).toBe(404);
    expect((await get(t.httpPort, '/')).status).toBe(404);
    const post = await get(t.httpPort, '/health', { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await get(t.httpPort, '/.well-known/host-meta', { method: 'DELETE' })).status).toBe(405);
    const page = await get(t.httpPort, '/xmpp-websocket');
    expect(page.status).toBe(426);
    expect(page.body).toContain('RFC 7395');
    await expect(WsClient.connect(`ws://127.0.0.1:${t.httpPort}/not-websocket`)).rejects.toMatchObject({ status: 404 });
  });

  it('turns a failing route handler into a 500 and keeps serving', async () => {
    const remove = t.server.http!.addRoute('/boom', () => { throw new Error('boom'); }, { methods: ['GET'] });
    try {
      expect((await get(t.httpPort, '/boom/index.html')).status).toBe(500);
      expect((await get(t.httpPort, '/health')).status).toBe(200);
    } finally {
      remove();
    }
  });

  it('reports health as JSON for load balancers, on both ports', async () => {
    const r = await get(t.httpPort, '/health');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(r.body);
    expect(body).toEqual({ status: 'ok', sessions: expect.any(Number), connections: expect.any(Number), uptimeSeconds: expect.any(Number) });
    expect((await get(t.httpsPort, '/health', { tls: true })).status).toBe(200);
    const head = await get(t.httpPort, '/health', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });
});

describe('HTTP listener shutdown', () => {
  it('answers /health with 503 and refuses new WebSockets once the server is going down', async () => {
    const t = await startTestServer({}, { 'alice@localhost': 'pw' });
    try {
      const ws = await WsClient.connect(`ws://127.0.0.1:${t.httpPort}/xmpp-websocket`);
      await ws.login('alice', 'pw', 'counted');
      const healthy = JSON.parse((await get(t.httpPort, '/health')).body);
      expect(healthy).toMatchObject({ status: 'ok', sessions: 1, connections: 1 });
      t.server.http!.beginShutdown();
      const r = await get(t.httpPort, '/health');
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body).status).toBe('shutting-down');
      await expect(WsClient.connect(`ws://127.0.0.1:${t.httpPort}/xmpp-websocket`)).rejects.toMatchObject({ status: 503 });
      ws.close();
    } finally {
      await t.stop();
    }
  });

  it('runs with the web listener turned off', async () => {
    const t = await startTestServer({ http: { port: null, tlsPort: null } });
    try {
      expect(t.server.http).toBeUndefined();
      expect(() => t.httpPort).toThrow('listener http is not running');
    } finally {
      await t.stop();
    }
  });
});
