import { createReadStream, promises as fs, type Stats } from 'node:fs';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WEBSOCKET_PATH, type HttpContext, type HttpListener } from './http-listener';

const gzip = promisify(gzipCallback);

/**
 * The built-in web chat: Converse.js (the npm package's own files, nothing from a CDN) on a page
 * pre-configured for this server.
 *
 *   <path>            the page (also <path>/): HTML with the per-request settings as JSON
 *   <path>/start.js   reads those settings and calls converse.initialize()
 *   <path>/dist/...   the files of node_modules/converse.js/dist (the bundle, its CSS, locale
 *                     chunks, emoji.json, images, sounds, fonts)
 */
export interface ChatPageOptions {
  /** Where the page lives, e.g. '/chat' (http.chatPath). */
  path: string;
  /** Hosted domains; the first is the default login domain. */
  domains: readonly string[];
  /** In-band registration is on (modules.register.allowRegistration): the page offers it. */
  allowRegistration: boolean;
  /** The converse.js dist folder; by default resolved from the installed package. */
  converseDir?: string;
}

/** Content types of the files Converse loads; any other extension is not served. */
export const ASSET_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};
/** Worth compressing (fonts, images and audio are compressed already). */
const COMPRESSIBLE = new Set(['.js', '.mjs', '.css', '.json', '.svg']);
/** Files larger than this are streamed uncompressed rather than gzipped into memory. */
const MAX_GZIP_BYTES = 8 * 1024 * 1024;
/**
 * Asset names are not content-hashed, so they are cached for a day and revalidated with the
 * ETag (which carries size and mtime: a converse.js upgrade changes it), not forever.
 */
const ASSET_CACHE = 'public, max-age=86400';

/** The installed converse.js package's dist folder (works from src/ under ts-jest and from dist/). */
export function converseDistDir(): string {
  // The package's "exports" map publishes ./dist/*, not package.json.
  try {
    return dirname(require.resolve('converse.js/dist/converse.min.js'));
  } catch {
    throw new Error('The web chat page needs the converse.js package, which is not installed: run npm install, or set http.chatPath: null');
  }
}

/** The settings handed to converse.initialize() for one request. */
export interface ConverseSettings {
  [key: string]: unknown;
  websocket_url: string;
  default_domain: string;
  assets_path: string;
}

/**
 * Converse settings for a page requested through `ctx`: the WebSocket URL is the scheme and
 * Host the browser used (wss:// when the page came over HTTPS or from a TLS-terminating
 * trusted proxy), so the page works under whatever name and port it was reached by.
 */
export function converseSettings(ctx: HttpContext, localPort: number | undefined, opts: ChatPageOptions): ConverseSettings {
  const domain = domainFor(ctx.client.host, opts.domains);
  const host = ctx.client.host ?? `${domain}:${localPort ?? ''}`;
  const ws = ctx.client.scheme === 'https' ? 'wss' : 'ws';
  return {
    // Connection: only our WebSocket endpoint, named explicitly (no XEP-0156 lookup, no BOSH).
    websocket_url: `${ws}://${host}${WEBSOCKET_PATH}`,
    discover_connection_methods: false,
    authentication: 'login',
    auto_login: false,
    auto_reconnect: true,
    // 'alice' logs in as alice@<domain>; other hosted domains are typed in full.
    default_domain: domain,
    allow_registration: opts.allowRegistration,
    registration_domain: opts.allowRegistration ? domain : '',
    view_mode: 'fullscreen',
    // Chunks (translations), emoji.json and sounds come from this server.
    assets_path: basePath(opts.path) + '/dist',
    allow_non_roster_messaging: true,
    // Nothing from the internet: no provider lists, no URL header probing, no remote media,
    // no Spotify/YouTube players, system emoji rather than the Twemoji CDN.
    xmpp_providers_url: '',
    autocomplete_providers_url: '',
    fetch_url_headers: false,
    render_media: false,
    show_images_inline: false,
    embed_3rd_party_media_players: false,
    use_system_emojis: true,
    // OMEMO needs PEP (XEP-0163), which this server does not offer; it would also load a
    // WebAssembly library the Content-Security-Policy does not allow.
    blacklisted_plugins: ['converse-omemo', 'converse-omemo-views'],
    loglevel: 'warn',
  };
}

/** The hosted domain the Host header names (port and trailing dot ignored), else the first. */
export function domainFor(host: string | undefined, domains: readonly string[]): string {
  const first = domains[0] ?? 'localhost';
  if (host === undefined || host.startsWith('[')) return first;
  const name = host.replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
  return domains.includes(name) ? name : first;
}

/**
 * The page may load scripts, styles, fonts, images and sounds only from this server and talk
 * only to it (fetch of emoji.json and chunks; the WebSocket, named explicitly because 'self'
 * covers ws:/wss: only in newer browsers). Converse renders some style="" attributes through
 * its templates, hence 'unsafe-inline' for styles (not for scripts). Avatars are data: URLs.
 */
export function contentSecurityPolicy(websocketUrl: string): string {
  const ws = new URL(websocketUrl);
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "media-src 'self' data: blob:",
    `connect-src 'self' ${ws.protocol}//${ws.host}`,
    "worker-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "object-src 'none'",
    "frame-ancestors 'self'",
  ].join('; ');
}

/** Registers the chat page's route on the web listener; returns a function that removes it. */
export function serveChatPage(http: HttpListener, opts: ChatPageOptions): () => void {
  const page = new ChatPage(opts);
  return http.addRoute(opts.path, (req, res, ctx) => page.handle(req, res, ctx), { methods: ['GET', 'HEAD'] });
}

export class ChatPage {
  private readonly root: string;
  private readonly base: string;
  private rootReal: Promise<string> | undefined;
  /** Compressed assets by path, valid while the file's size and mtime stay the same. */
  private readonly gzipped = new Map<string, { tag: string; body: Promise<Buffer> }>();

  constructor(private readonly opts: ChatPageOptions) {
    this.root = resolve(opts.converseDir ?? converseDistDir());
    this.base = basePath(opts.path);
  }

  async handle(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
    const rest = ctx.url.pathname.slice(this.base.length);
    if (rest === '' || rest === '/') return this.page(req, res, ctx);
    if (rest === '/start.js') return this.startScript(req, res);
    if (rest.startsWith('/dist/')) return this.asset(req, res, rest.slice('/dist/'.length));
    notFound(res);
  }

  private page(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): void {
    const settings = converseSettings(ctx, req.socket.localPort, this.opts);
    const body = pageHtml(this.base, settings);
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': contentSecurityPolicy(settings.websocket_url),
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      // The settings depend on the name and scheme the page was requested by.
      Vary: 'Host, X-Forwarded-Host, X-Forwarded-Proto',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private startScript(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Content-Length': Buffer.byteLength(START_JS),
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : START_JS);
  }

  /** A file of converse.js's dist folder, or 404 (400 for a path that tries to leave it). */
  private async asset(req: IncomingMessage, res: ServerResponse, encoded: string): Promise<void> {
    if (encoded === '') return notFound(res);
    const rel = safeRelativePath(encoded);
    if (rel === undefined) return sendText(res, 400, 'Bad path');
    const type = ASSET_TYPES[extname(rel).toLowerCase()];
    if (type === undefined) return notFound(res);
    const file = join(this.root, rel);
    let stat: Stats;
    try {
      // Symbolic links must not lead out of the folder either.
      const real = await fs.realpath(file);
      this.rootReal ??= fs.realpath(this.root);
      if (!real.startsWith((await this.rootReal) + sep)) return notFound(res);
      stat = await fs.stat(real);
    } catch {
      return notFound(res);
    }
    if (!stat.isFile()) return notFound(res);

    const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    const ext = extname(rel).toLowerCase();
    const useGzip = COMPRESSIBLE.has(ext) && stat.size <= MAX_GZIP_BYTES && acceptsGzip(req.headers['accept-encoding']);
    const headers: Record<string, string | number> = {
      'Content-Type': type,
      'Cache-Control': ASSET_CACHE,
      ETag: useGzip ? etag.slice(0, -1) + '-gz"' : etag,
      'Last-Modified': stat.mtime.toUTCString(),
      'X-Content-Type-Options': 'nosniff',
    };
    if (COMPRESSIBLE.has(ext)) headers.Vary = 'Accept-Encoding';
    if (notModified(req, headers.ETag as string, stat.mtime)) {
      res.writeHead(304, headers).end();
      return;
    }
    if (useGzip) {
      const body = await this.gzipOf(file, etag);
      res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip', 'Content-Length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': stat.size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await new Promise<void>((done) => {
      const stream = createReadStream(file);
      stream.on('error', () => {
        res.destroy();
        done();
      });
      res.on('close', () => {
        stream.destroy();
        done();
      });
      stream.pipe(res);
    });
  }

  private gzipOf(file: string, tag: string): Promise<Buffer> {
    const cached = this.gzipped.get(file);
    if (cached && cached.tag === tag) return cached.body;
    const body = fs.readFile(file).then((data) => gzip(data, { level: 9 }));
    body.catch(() => this.gzipped.delete(file));
    this.gzipped.set(file, { tag, body });
    return body;
  }
}

/** '/chat' → '/chat'; '/' → '' (so that base + '/dist' is never '//dist'). */
function basePath(path: string): string {
  return path === '/' ? '' : path.replace(/\/+$/, '');
}

/**
 * The file path a URL path below /dist/ names, relative to the dist folder; undefined when it
 * is malformed or tries to leave the folder ('..', absolute, backslashes, NUL, hidden names).
 * The listener's URL parsing already resolved literal and %2e dot segments; this catches what
 * survives it, such as %2f-encoded slashes.
 */
export function safeRelativePath(encoded: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  if (decoded === '' || decoded.includes('\0') || decoded.includes('\\') || decoded.startsWith('/')) return undefined;
  const segments = decoded.split('/');
  if (segments.some((s) => s === '' || s.startsWith('.'))) return undefined;
  return segments.join('/');
}

function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function notModified(req: IncomingMessage, etag: string, mtime: Date): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*');
  const ims = req.headers['if-modified-since'];
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && Math.floor(mtime.getTime() / 1000) <= Math.floor(since / 1000);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  const body = text + '\n';
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}

function notFound(res: ServerResponse): void {
  sendText(res, 404, 'Not found');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that is safe inside <script>: no '<' (so no '</script>' or '<!--'), no U+2028/2029. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value, null, 2)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function pageHtml(base: string, settings: ConverseSettings): string {
  const dist = escapeHtml(base + '/dist');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat · ${escapeHtml(settings.default_domain)}</title>
<link rel="icon" href="${dist}/images/favicon.ico">
<link rel="stylesheet" href="${dist}/converse.min.css">
<script type="application/json" id="xmppd-chat-settings">
${scriptJson(settings)}
</script>
<script type="module" src="${dist}/converse.min.js"></script>
<script type="module" src="${escapeHtml(base)}/start.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat needs JavaScript. Any XMPP client works too: log in as you@${escapeHtml(settings.default_domain)}.</noscript>
</body>
</html>
`;
}

/**
 * Runs after converse.min.js (module scripts run in document order): reads the page's settings
 * and starts Converse. Static, so the Content-Security-Policy needs no inline script.
 */
const START_JS = `// xmppd web chat: starts Converse.js with the settings the server put into the page.
const settings = JSON.parse(document.getElementById('xmppd-chat-settings').textContent);
function fail(message) {
  const p = document.createElement('p');
  p.setAttribute('role', 'alert');
  p.textContent = 'The chat could not start: ' + message;
  document.body.append(p);
}
function start() {
  try {
    window.converse.initialize(settings);
  } catch (err) {
    fail(err && err.message ? err.message : String(err));
  }
}
// Converse's own footer shows its sponsors' logos from conversejs.org; this page loads nothing
// from elsewhere, so a plain one takes its place (Converse registers its elements only when
// no element of that name exists yet).
if (!customElements.get('converse-footer')) {
  customElements.define('converse-footer', class extends HTMLElement {
    connectedCallback() {
      if (this.firstChild) return;
      const footer = document.createElement('footer');
      footer.className = 'footer mt-auto py-3 text-center';
      const p = document.createElement('p');
      p.className = 'brand-subtitle subdued mb-0';
      const link = document.createElement('a');
      link.href = 'https://conversejs.org';
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      link.textContent = 'Converse.js';
      p.append(link, ', the open source XMPP web client, served by this xmppd server.');
      footer.append(p);
      this.append(footer);
    }
  });
}
if (window.converse) start();
else {
  window.addEventListener('converse-loaded', start, { once: true });
  window.addEventListener('load', () => { if (!window.converse) fail('converse.min.js did not load'); }, { once: true });
}
`;
