// The built-in web chat page (Converse.js) over real sockets: the page and its per-request
// settings, the Content-Security-Policy, the converse.js files with their types and caching,
// path traversal refused, and the page turned off or moved by config.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startTestServer, type TestServer } from '../helpers/server';
import { converseDistDir, domainFor, safeRelativePath, serveChatPage } from '../../src/net/chat-page';

interface Reply { status: number; headers: IncomingHttpHeaders; body: Buffer; text: string }

/** A raw request: the path goes out exactly as written (no client-side normalisation). */
function get(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; tls?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = (opts.tls ? httpsRequest : httpRequest)({
      host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, rejectUnauthorized: false, agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The settings the page hands to converse.initialize(). */
function settingsOf(html: string): Record<string, unknown> {
  const m = /<script type="application\/json" id="xmppd-chat-settings">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error(`no settings in the page:\n${html}`);
  return JSON.parse(m[1]!) as Record<string, unknown>;
}

const DIST = converseDistDir();
const PACKAGE_DESCRIPTION = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')).description as string;

describe('web chat page', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ domains: ['localhost', 'chat.example'] });
  });
  afterAll(() => t.stop());

  it('serves the page over HTTP with a ws:// URL for the host it was asked by', async () => {
    const r = await get(t.httpPort, '/chat', { headers: { Host: `localhost:${t.httpPort}` } });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.text).toContain('<link rel="stylesheet" href="/chat/dist/converse.min.css">');
    expect(r.text).toContain('<script type="module" src="/chat/dist/converse.min.js"></script>');
    expect(r.text).toContain('<script type="module" src="/chat/start.js"></script>');
    // No inline script runs: the settings are a JSON data block.
    expect(r.text.match(/<script(?![^>]*(?:src=|type="application\/json"))/g)).toBeNull();
    expect(settingsOf(r.text)).toMatchObject({
      websocket_url: `ws://localhost:${t.httpPort}/xmpp-websocket`,
      discover_connection_methods: false,
      authentication: 'login',
      auto_reconnect: true,
      view_mode: 'fullscreen',
      default_domain: 'localhost',
      assets_path: '/chat/dist',
      allow_registration: false,
      xmpp_providers_url: '',
      autocomplete_providers_url: '',
      fetch_url_headers: false,
      render_media: false,
      embed_3rd_party_media_players: false,
      use_system_emojis: true,
      blacklisted_plugins: ['converse-omemo', 'converse-omemo-views'],
    });
    expect(r.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; " +
      `media-src 'self' data: blob:; connect-src 'self' ws://localhost:${t.httpPort}; worker-src 'self'; manifest-src 'self'; ` +
      "base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors 'self'");

    const slash = await get(t.httpPort, '/chat/', { headers: { Host: `localhost:${t.httpPort}` } });
    expect(slash.status).toBe(200);
    expect(settingsOf(slash.text).websocket_url).toBe(`ws://localhost:${t.httpPort}/xmpp-websocket`);
  });

  it('serves the page over HTTPS with a wss:// URL', async () => {
    const r = await get(t.httpsPort, '/chat', { tls: true, headers: { Host: `localhost:${t.httpsPort}` } });
    expect(r.status).toBe(200);
    expect(settingsOf(r.text).websocket_url).toBe(`wss://localhost:${t.httpsPort}/xmpp-websocket`);
    expect(r.headers['content-security-policy']).toContain(`connect-src 'self' wss://localhost:${t.httpsPort};`);
  });

  it('picks the hosted domain the Host header names, else the first', async () => {
    const other = await get(t.httpPort, '/chat', { headers: { Host: 'Chat.Example:8080' } });
    expect(settingsOf(other.text)).toMatchObject({ default_domain: 'chat.example', websocket_url: 'ws://Chat.Example:8080/xmpp-websocket' });
    expect(other.text).toContain('<title>Chat · chat.example</title>');
    const unknown = await get(t.httpPort, '/chat', { headers: { Host: '127.0.0.1:5280' } });
    expect(settingsOf(unknown.text)).toMatchObject({ default_domain: 'localhost', websocket_url: 'ws://127.0.0.1:5280/xmpp-websocket' });
    // A malformed Host is not echoed into the page: the first domain and the local port instead.
    const bad = await get(t.httpPort, '/chat', { headers: { Host: 'x"><script>alert(1)</script>' } });
    expect(bad.status).toBe(200);
    expect(settingsOf(bad.text).websocket_url).toBe(`ws://localhost:${t.httpPort}/xmpp-websocket`);
    expect(bad.text).not.toContain('<script>alert');
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await get(t.httpPort, '/chat', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    const post = await get(t.httpPort, '/chat', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('serves the start script', async () => {
    const r = await get(t.httpPort, '/chat/start.js');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(r.text).toContain("document.getElementById('xmppd-chat-settings')");
    expect(r.text).toContain('converse.initialize(settings)');
  });

  it.each([
    ['converse.min.js', 'text/javascript; charset=utf-8'],
    ['converse.min.css', 'text/css; charset=utf-8'],
    ['emoji.json', 'application/json'],
    ['converse.min.js.map', 'application/json'],
    ['curve25519_compiled.wasm', 'application/wasm'],
    ['images/logo/conversejs-filled.svg', 'image/svg+xml'],
    ['images/custom_emojis/converse.png', 'image/png'],
    ['images/favicon.ico', 'image/x-icon'],
    ['webfonts/muli.ttf', 'font/ttf'],
    ['sounds/msg_received.ogg', 'audio/ogg'],
    ['chunkjs/locales/de-LC_MESSAGES-converse-po.js', 'text/javascript; charset=utf-8'],
  ])('serves dist/%s as %s, byte for byte, cacheable', async (file, type) => {
    const r = await get(t.httpPort, `/chat/dist/${file}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(type);
    expect(r.headers['cache-control']).toBe('public, max-age=86400');
    expect(r.headers.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(r.headers['last-modified']).toBe(statSync(join(DIST, file)).mtime.toUTCString());
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.body.equals(readFileSync(join(DIST, file)))).toBe(true);
  });

  it('gzips text assets for clients that accept it, and revalidates with the ETag', async () => {
    const r = await get(t.httpPort, '/chat/dist/converse.min.js', { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(r.headers.vary).toBe('Accept-Encoding');
    expect(gunzipSync(r.body).equals(readFileSync(join(DIST, 'converse.min.js')))).toBe(true);
    expect(r.body.length).toBeLessThan(statSync(join(DIST, 'converse.min.js')).size / 2);
    const again = await get(t.httpPort, '/chat/dist/converse.min.js', { headers: { 'Accept-Encoding': 'gzip', 'If-None-Match': String(r.headers.etag) } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    // Images are compressed already.
    const png = await get(t.httpPort, '/chat/dist/images/custom_emojis/converse.png', { headers: { 'Accept-Encoding': 'gzip' } });
    expect(png.headers['content-encoding']).toBeUndefined();
    const head = await get(t.httpPort, '/chat/dist/converse.min.css', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(statSync(join(DIST, 'converse.min.css')).size);
    expect(head.body.length).toBe(0);
  });

  it('answers 404 for files that are not there or not of a served type', async () => {
    for (const path of ['/chat/dist/nope.js', '/chat/dist/sounds/README', '/chat/dist/images', '/chat/dist/', '/chat/dist', '/chat/index.html', '/chatroom']) {
      const r = await get(t.httpPort, path);
      expect([path, r.status]).toEqual([path, 404]);
    }
  });

  it.each([
    '/chat/dist/../../package.json',
    '/chat/dist/../../../package.json',
    '/chat/dist/%2e%2e/%2e%2e/package.json',
    '/chat/dist/%2E%2E/%2E%2E/%2E%2E/package.json',
    '/chat/dist/..%2f..%2fpackage.json',
    '/chat/dist/..%2F..%2F..%2Fpackage.json',
    '/chat/dist/%2e%2e%2f%2e%2e%2fpackage.json',
    '/chat/dist/images/..%2f..%2f..%2f..%2fpackage.json',
    '/chat/dist/..%5c..%5cpackage.json',
    '/chat/dist/..\\..\\package.json',
    '/chat/dist/%2fetc%2fpasswd',
    '/chat/dist//etc/passwd',
    '/chat/dist/converse.min.js%00.png',
    '/chat/dist/%c0%ae%c0%ae/package.json',
  ])('refuses %s', async (path) => {
    const r = await get(t.httpPort, path);
    expect([400, 404]).toContain(r.status);
    expect(r.text).not.toContain(PACKAGE_DESCRIPTION);
    expect(r.text).not.toContain('"name": "converse.js"');
    expect(r.text).not.toContain('root:');
  });

  it('does not follow symbolic links out of the assets folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xmppd-chat-'));
    try {
      const assets = join(dir, 'dist');
      mkdirSync(assets);
      writeFileSync(join(assets, 'inside.js'), 'ok();\n');
      writeFileSync(join(dir, 'secret.json'), '{"secret":true}\n');
      symlinkSync(join(dir, 'secret.json'), join(assets, 'leak.json'));
      const remove = serveChatPage(t.server.http!, { path: '/linked', domains: ['localhost'], allowRegistration: false, converseDir: assets });
      try {
        expect((await get(t.httpPort, '/linked/dist/inside.js')).text).toBe('ok();\n');
        const leak = await get(t.httpPort, '/linked/dist/leak.json');
        expect(leak.status).toBe(404);
        expect(leak.text).not.toContain('secret');
      } finally {
        remove();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('web chat page configuration', () => {
  it('is off with http.chatPath: null', async () => {
    const t = await startTestServer({ http: { chatPath: null } });
    try {
      expect((await get(t.httpPort, '/chat')).status).toBe(404);
      expect((await get(t.httpPort, '/chat/dist/converse.min.js')).status).toBe(404);
      expect((await get(t.httpPort, '/health')).status).toBe(200);
    } finally {
      await t.stop();
    }
  });

  it('moves with http.chatPath, believes a trusted proxy and offers registration when it is on', async () => {
    const t = await startTestServer({
      http: { chatPath: '/webchat/', trustedProxies: ['127.0.0.1'] },
      modules: { register: { allowRegistration: true } },
    });
    try {
      expect((await get(t.httpPort, '/chat')).status).toBe(404);
      const r = await get(t.httpPort, '/webchat', { headers: { Host: 'internal:5280', 'X-Forwarded-Host': 'chat.example.org', 'X-Forwarded-Proto': 'https' } });
      expect(r.status).toBe(200);
      expect(r.text).toContain('<script type="module" src="/webchat/dist/converse.min.js"></script>');
      expect(settingsOf(r.text)).toMatchObject({
        websocket_url: 'wss://chat.example.org/xmpp-websocket',
        assets_path: '/webchat/dist',
        allow_registration: true,
        registration_domain: 'localhost',
      });
      expect(r.headers['content-security-policy']).toContain("connect-src 'self' wss://chat.example.org;");
      expect(r.headers.vary).toBe('Host, X-Forwarded-Host, X-Forwarded-Proto');
      expect((await get(t.httpPort, '/webchat/dist/converse.min.css')).status).toBe(200);
    } finally {
      await t.stop();
    }
  });
});

describe('web chat page at the root', () => {
  it('serves / and /dist/ with http.chatPath: "/", leaving the listener\'s own endpoints alone', async () => {
    const t = await startTestServer({ http: { chatPath: '/' } });
    try {
      const r = await get(t.httpPort, '/', { headers: { Host: `localhost:${t.httpPort}` } });
      expect(r.status).toBe(200);
      expect(r.text).toContain('<script type="module" src="/dist/converse.min.js"></script>');
      expect(r.text).toContain('<script type="module" src="/start.js"></script>');
      expect(settingsOf(r.text)).toMatchObject({ assets_path: '/dist', websocket_url: `ws://localhost:${t.httpPort}/xmpp-websocket` });
      expect((await get(t.httpPort, '/dist/converse.min.css')).status).toBe(200);
      expect((await get(t.httpPort, '/start.js')).status).toBe(200);
      expect((await get(t.httpPort, '/health')).status).toBe(200);
      expect((await get(t.httpPort, '/.well-known/host-meta')).status).toBe(200);
      expect((await get(t.httpPort, '/favicon.ico')).status).toBe(404);
    } finally {
      await t.stop();
    }
  });
});

describe('web chat helpers', () => {
  it('maps the Host header to a hosted domain', () => {
    expect(domainFor('chat.example:443', ['localhost', 'chat.example'])).toBe('chat.example');
    expect(domainFor('CHAT.example.', ['localhost', 'chat.example'])).toBe('chat.example');
    expect(domainFor('other.example', ['localhost', 'chat.example'])).toBe('localhost');
    expect(domainFor('[::1]:5280', ['localhost'])).toBe('localhost');
    expect(domainFor(undefined, ['a.example'])).toBe('a.example');
  });

  it('accepts plain relative paths only', () => {
    expect(safeRelativePath('converse.min.js')).toBe('converse.min.js');
    expect(safeRelativePath('chunkjs/locales/de-LC_MESSAGES-converse-po.js')).toBe('chunkjs/locales/de-LC_MESSAGES-converse-po.js');
    expect(safeRelativePath('images%2Ffavicon.ico')).toBe('images/favicon.ico');
    for (const bad of ['', '..', '../x', 'a/../../x', '..%2fx', '%2e%2e/x', '/etc/passwd', '%2Fetc', 'a//b', 'a\\..\\b', 'x%00.js', '%E0%A4%A', '.hidden', 'a/.git/config']) {
      expect([bad, safeRelativePath(bad)]).toEqual([bad, undefined]);
    }
  });
});
