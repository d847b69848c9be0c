import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve, join } from 'node:path';
import YAML from 'yaml';
import { Jid } from './jid';
import { parseAddressBlock } from './net/http-proxy';

/** The whole configuration, with every default filled in. See config/xmppd.yaml for the documented file. */
export interface Config {
  /** Hosted domains; the first is the default. */
  domains: string[];
  /** Guest domains (SASL ANONYMOUS, RFC 4505): no accounts, a fresh address per login. Empty: off. */
  anonymousDomains: string[];
  /** Absolute path of the folder holding the database, generated certificate and admin socket. */
  dataDir: string;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'; format: 'auto' | 'json' | 'pretty' };
  c2s: {
    host: string;
    /** STARTTLS port (RFC 6120); 0 picks a free port, null turns the listener off. */
    port: number | null;
    /** Direct TLS port (XEP-0368). */
    tlsPort: number | null;
    requireTls: boolean;
  };
  http: {
    host: string;
    /** Plain HTTP port (WebSocket, BOSH, host-meta, health); null turns it off. */
    port: number | null;
    /** HTTPS port, with the c2s certificate. */
    tlsPort: number | null;
    /** Reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For / X-Forwarded-Proto are believed. */
    trustedProxies: string[];
    /** Allow logins over plain http/ws from addresses that are neither loopback nor a trusted proxy. */
    allowInsecure: boolean;
    /** Origins (scheme://host[:port]) allowed to open a WebSocket; null allows any. */
    allowedOrigins: string[] | null;
    /** When set, every WebSocket client is sent there with <close see-other-uri/> (RFC 7395 §3.6.1). */
    websocketSeeOtherUri: string | null;
    /** Path of the built-in web chat page (Converse.js), e.g. /chat; null turns it off. */
    chatPath: string | null;
  };
  tls: { cert: string | null; key: string | null };
  limits: {
    maxStanzaBytes: number;
    maxDepth: number;
    maxAttributes: number;
    /** Seconds a connection may take to authenticate and bind. */
    authTimeout: number;
    /** Seconds of silence after which an authenticated client is pinged, then dropped. */
    idleTimeout: number;
    maxConnectionsPerAddress: number;
    /** Concurrent client connections in total (TCP, WebSocket, BOSH); more get <resource-constraint/>. */
    maxConnections: number;
    /** Sustained bytes per second read from one TCP connection; above it, reading pauses (nothing is dropped). */
    bytesPerSecond: number;
    /** Bytes a TCP connection may send at once before the bytesPerSecond shaper starts pausing it. */
    burstBytes: number;
    /** Sustained stanzas per second a bound session may send; above it, the server waits before handling more. */
    stanzasPerSecond: number;
    /** Stanzas a bound session may send at once before stanzasPerSecond applies. */
    stanzaBurst: number;
  };
  auth: {
    /** Failed logins are answered after this delay, doubled per further failure (per account and per address). */
    failureDelayMs: number;
    maxFailureDelayMs: number;
  };
  sessions: {
    resourceConflict: 'replace' | 'refuse';
    /** Seconds a session with XEP-0198 stream management waits for its client to resume after a dropped connection. */
    resumeTimeout: number;
  };
  /** Per-module options; `false` turns a module off. */
  modules: Record<string, Record<string, unknown> | false>;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The project's default config file (config/xmppd.yaml), found from src/ or dist/src/. */
export function defaultConfigPath(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'config', 'xmppd.yaml');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return join(process.cwd(), 'config', 'xmppd.yaml');
}

function defaults(baseDir: string): Config {
  return {
    domains: ['localhost'],
    anonymousDomains: [],
    dataDir: resolve(baseDir, '..', 'data'),
    log: { level: 'info', format: 'auto' },
    c2s: { host: '::', port: 5222, tlsPort: 5223, requireTls: true },
    http: { host: '::', port: 5280, tlsPort: 5443, trustedProxies: [], allowInsecure: false, allowedOrigins: null, websocketSeeOtherUri: null, chatPath: '/chat' },
    tls: { cert: null, key: null },
    limits: { maxStanzaBytes: 262144, maxDepth: 32, maxAttributes: 64, authTimeout: 30, idleTimeout: 300, maxConnectionsPerAddress: 64,
      maxConnections: 20000, bytesPerSecond: 102400, burstBytes: 1048576, stanzasPerSecond: 100, stanzaBurst: 500,
    },
    auth: { failureDelayMs: 1000, maxFailureDelayMs: 16000 },
    sessions: { resourceConflict: 'replace', resumeTimeout: 300 },
    modules: {},
  };
}

type Env = Record<string, string | undefined>;

/**
 * Reads the config file (XMPPD_CONFIG, else `path`, else config/xmppd.yaml), applies the
 * XMPPD_* environment overrides, and validates everything, naming the bad key and value.
 */
export function loadConfig(path?: string, env: Env = process.env): Config {
  const file = resolve(env.XMPPD_CONFIG || path || defaultConfigPath());
  let raw: unknown = {};
  if (existsSync(file)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    try {
      raw = YAML.parse(text) ?? {};
    } catch (err) {
      throw new ConfigError(`${file} is not valid YAML: ${(err as Error).message}`);
    }
  } else if (env.XMPPD_CONFIG || path) {
    throw new ConfigError(`config file ${file} does not exist`);
  }
  return buildConfig(raw, dirname(file), env, file);
}

/** Validates a parsed config object; relative paths are resolved against `baseDir`. */
export function buildConfig(raw: unknown, baseDir: string, env: Env = {}, source = 'config'): Config {
  const cfg = defaults(baseDir);
  const v = new Validator(source);
  const root = v.object(raw, '');
  for (const key of Object.keys(root)) {
    switch (key) {
      case 'domains': cfg.domains = v.domains(root[key], 'domains'); break;
      case 'anonymousDomains':
        cfg.anonymousDomains = Array.isArray(root[key]) && (root[key] as unknown[]).length === 0 ? [] : v.domains(root[key], 'anonymousDomains');
        break;
      case 'dataDir': cfg.dataDir = resolve(baseDir, v.string(root[key], 'dataDir')); break;
      case 'log': {
        const o = v.object(root[key], 'log');
        for (const k of Object.keys(o)) {
          if (k === 'level') cfg.log.level = v.oneOf(o[k], 'log.level', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
          else if (k === 'format') cfg.log.format = v.oneOf(o[k], 'log.format', ['auto', 'json', 'pretty']);
          else v.unknown(`log.${k}`);
        }
        break;
      }
      case 'c2s': {
        const o = v.object(root[key], 'c2s');
        for (const k of Object.keys(o)) {
          if (k === 'host') cfg.c2s.host = v.string(o[k], 'c2s.host');
          else if (k === 'port') cfg.c2s.port = v.port(o[k], 'c2s.port');
          else if (k === 'tlsPort') cfg.c2s.tlsPort = v.port(o[k], 'c2s.tlsPort');
          else if (k === 'requireTls') cfg.c2s.requireTls = v.bool(o[k], 'c2s.requireTls');
          else v.unknown(`c2s.${k}`);
        }
        break;
      }
      case 'http': {
        const o = v.object(root[key], 'http');
        for (const k of Object.keys(o)) {
          if (k === 'host') cfg.http.host = v.string(o[k], 'http.host');
          else if (k === 'port') cfg.http.port = v.port(o[k], 'http.port');
          else if (k === 'tlsPort') cfg.http.tlsPort = v.port(o[k], 'http.tlsPort');
          else if (k === 'trustedProxies') cfg.http.trustedProxies = v.addressBlocks(o[k], 'http.trustedProxies');
          else if (k === 'allowInsecure') cfg.http.allowInsecure = v.bool(o[k], 'http.allowInsecure');
          else if (k === 'allowedOrigins') cfg.http.allowedOrigins = o[k] === null ? null : v.origins(o[k], 'http.allowedOrigins');
          else if (k === 'websocketSeeOtherUri') cfg.http.websocketSeeOtherUri = o[k] === null ? null : v.url(o[k], 'http.websocketSeeOtherUri', ['ws:', 'wss:', 'http:', 'https:']);
          else if (k === 'chatPath') cfg.http.chatPath = o[k] === null || o[k] === false ? null : v.urlPath(o[k], 'http.chatPath', RESERVED_HTTP_PATHS);
          else v.unknown(`http.${k}`);
        }
        break;
      }
      case 'tls': {
        const o = v.object(root[key], 'tls');
        for (const k of Object.keys(o)) {
          if (k === 'cert' || k === 'key') cfg.tls[k] = o[k] === null ? null : resolve(baseDir, v.string(o[k], `tls.${k}`));
          else v.unknown(`tls.${k}`);
        }
        if ((cfg.tls.cert === null) !== (cfg.tls.key === null)) v.fail('tls', 'set both tls.cert and tls.key, or neither');
        break;
      }
      case 'limits': {
        const o = v.object(root[key], 'limits');
        for (const k of Object.keys(o)) {
          if (k in cfg.limits) (cfg.limits as Record<string, number>)[k] = v.positiveInt(o[k], `limits.${k}`);
          else v.unknown(`limits.${k}`);
        }
        if (cfg.limits.maxStanzaBytes < 10000) v.fail('limits.maxStanzaBytes', 'must be at least 10000 (RFC 6120 §13.12)');
        if (cfg.limits.burstBytes < cfg.limits.bytesPerSecond) v.fail('limits.burstBytes', `must be at least limits.bytesPerSecond (${cfg.limits.bytesPerSecond})`);
        if (cfg.limits.stanzaBurst < cfg.limits.stanzasPerSecond) v.fail('limits.stanzaBurst', `must be at least limits.stanzasPerSecond (${cfg.limits.stanzasPerSecond})`);
        break;
      }
      case 'auth': {
        const o = v.object(root[key], 'auth');
        for (const k of Object.keys(o)) {
          if (k === 'failureDelayMs' || k === 'maxFailureDelayMs') cfg.auth[k] = v.nonNegativeInt(o[k], `auth.${k}`);
          else v.unknown(`auth.${k}`);
        }
        break;
      }
      case 'sessions': {
        const o = v.object(root[key], 'sessions');
        for (const k of Object.keys(o)) {
          if (k === 'resourceConflict') cfg.sessions.resourceConflict = v.oneOf(o[k], 'sessions.resourceConflict', ['replace', 'refuse']);
          else if (k === 'resumeTimeout') cfg.sessions.resumeTimeout = v.nonNegativeInt(o[k], 'sessions.resumeTimeout');
          else v.unknown(`sessions.${k}`);
        }
        break;
      }
      case 'modules': {
        const o = v.object(root[key], 'modules');
        for (const [name, opts] of Object.entries(o)) {
          if (opts === false) cfg.modules[name] = false;
          else if (opts === null || opts === true) cfg.modules[name] = {};
          else cfg.modules[name] = v.object(opts, `modules.${name}`);
        }
        break;
      }
      default:
        v.unknown(key);
    }
  }
  applyEnv(cfg, env, v);
  for (const d of cfg.anonymousDomains) {
    if (cfg.domains.includes(d)) v.fail('anonymousDomains', `lists ${d}, which is also in domains: a domain is either for accounts or for guests`);
  }
  return cfg;
}

function applyEnv(cfg: Config, env: Env, v: Validator): void {
  const e = (name: string) => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const env2 = new Validator('environment');
  let s: string | undefined;
  if ((s = e('XMPPD_DOMAINS'))) cfg.domains = env2.domains(s.split(',').map((d) => d.trim()).filter(Boolean), 'XMPPD_DOMAINS');
  if ((s = e('XMPPD_DATA_DIR'))) cfg.dataDir = resolve(s);
  if ((s = e('XMPPD_C2S_PORT'))) cfg.c2s.port = env2.port(s, 'XMPPD_C2S_PORT');
  if ((s = e('XMPPD_C2S_TLS_PORT'))) cfg.c2s.tlsPort = env2.port(s, 'XMPPD_C2S_TLS_PORT');
  if ((s = e('XMPPD_HTTP_PORT'))) cfg.http.port = env2.port(s, 'XMPPD_HTTP_PORT');
  if ((s = e('XMPPD_HTTPS_PORT'))) cfg.http.tlsPort = env2.port(s, 'XMPPD_HTTPS_PORT');
  if ((s = e('XMPPD_LOG_LEVEL'))) cfg.log.level = env2.oneOf(s, 'XMPPD_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
  if ((s = e('XMPPD_C2S_REQUIRE_TLS'))) cfg.c2s.requireTls = env2.bool(s, 'XMPPD_C2S_REQUIRE_TLS');
  void v;
}

/** Endpoints the web listener serves itself: http.chatPath may not take them. */
const RESERVED_HTTP_PATHS = ['/xmpp-websocket', '/http-bind', '/.well-known', '/health'];

class Validator {
  constructor(private readonly source: string) {}

  fail(key: string, problem: string): never {
    throw new ConfigError(`${this.source}: ${key ? `"${key}" ` : ''}${problem}`);
  }

  unknown(key: string): never {
    return this.fail(key, 'is not a known setting (check the spelling against config/xmppd.yaml)');
  }

  object(value: unknown, key: string): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(key || 'the file', `must be a mapping, got ${show(value)}`);
    return value as Record<string, unknown>;
  }

  string(value: unknown, key: string): string {
    if (typeof value !== 'string' || value === '') this.fail(key, `must be a non-empty string, got ${show(value)}`);
    return value;
  }

  bool(value: unknown, key: string): boolean {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === '1' || value === 'yes') return true;
    if (value === 'false' || value === '0' || value === 'no') return false;
    return this.fail(key, `must be true or false, got ${show(value)}`);
  }

  oneOf<T extends string>(value: unknown, key: string, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !allowed.includes(value as T)) this.fail(key, `must be one of ${allowed.join(', ')}; got ${show(value)}`);
    return value as T;
  }

  int(value: unknown, key: string): number {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n)) this.fail(key, `must be a whole number, got ${show(value)}`);
    return n;
  }

  positiveInt(value: unknown, key: string): number {
    const n = this.int(value, key);
    if (n <= 0) this.fail(key, `must be greater than 0, got ${show(value)}`);
    return n;
  }

  nonNegativeInt(value: unknown, key: string): number {
    const n = this.int(value, key);
    if (n < 0) this.fail(key, `must not be negative, got ${show(value)}`);
    return n;
  }

  /** A TCP port, 0 for "any free port", or null/false for "off". */
  port(value: unknown, key: string): number | null {
    if (value === null || value === false || value === 'off') return null;
    const n = this.int(value, key);
    if (n < 0 || n > 65535) this.fail(key, `must be a port number 0-65535 (or null to turn it off), got ${show(value)}`);
    return n;
  }

  list(value: unknown, key: string, what: string): unknown[] {
    if (!Array.isArray(value)) this.fail(key, `must be a list of ${what}, got ${show(value)}`);
    return value;
  }

  /** IP addresses and CIDR blocks: 192.0.2.7, 10.0.0.0/8, ::1, fd00::/8. */
  addressBlocks(value: unknown, key: string): string[] {
    return this.list(value, key, 'IP addresses or CIDR blocks').map((item) => {
      const b = typeof item === 'string' ? parseAddressBlock(item) : undefined;
      if (!b) this.fail(key, `contains ${show(item)}, which is not an IP address or CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8)`);
      return `${b.address}/${b.prefix}`;
    });
  }

  /** Web origins as browsers send them: scheme://host[:port], nothing after. */
  origins(value: unknown, key: string): string[] {
    return this.list(value, key, 'origins like https://chat.example.org (or null for any)').map((item) => {
      const s = typeof item === 'string' ? item.trim().replace(/\/$/, '') : '';
      let origin: string | undefined;
      try {
        const u = new URL(s);
        if ((u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.hash && !u.username && !s.endsWith('?') && !s.endsWith('#')) origin = u.origin;
      } catch {
        origin = undefined;
      }
      if (origin === undefined) this.fail(key, `contains ${show(item)}, which is not an origin like https://chat.example.org (scheme, host and optional port, no path)`);
      return origin;
    });
  }

  /**
   * A path on the web listener: '/', or plain segments (letters, digits, - . _ ~) without a
   * trailing slash; not one of the listener's own endpoints, below one or above one.
   */
  urlPath(value: unknown, key: string, reserved: readonly string[]): string {
    const s = this.string(value, key).trim();
    const path = s.length > 1 ? s.replace(/\/+$/, '') : s;
    if (!/^(?:\/|(?:\/[A-Za-z0-9._~-]+)+)$/.test(path) || path.split('/').some((seg) => seg === '.' || seg === '..')) {
      this.fail(key, `must be a path like /chat (segments of letters, digits, - . _ ~), or null to turn it off; got ${show(value)}`);
    }
    const taken = reserved.find((r) => path === r || path.startsWith(r + '/') || r.startsWith(path + '/'));
    if (taken !== undefined) this.fail(key, `must not be ${taken} or overlap it (the web listener serves it); got ${show(value)}`);
    return path;
  }

  url(value: unknown, key: string, schemes: readonly string[]): string {
    const s = this.string(value, key);
    let u: URL | undefined;
    try {
      u = new URL(s);
    } catch {
      u = undefined;
    }
    if (!u || !schemes.includes(u.protocol)) this.fail(key, `must be a URL starting with ${schemes.map((p) => p + '//').join(', ')}; got ${show(value)}`);
    return u.toString();
  }

  domains(value: unknown, key: string): string[] {
    if (!Array.isArray(value) || value.length === 0) this.fail(key, `must be a non-empty list of domain names, got ${show(value)}`);
    const out: string[] = [];
    for (const d of value) {
      const s = this.string(d, key);
      const jid = Jid.tryParse(s);
      if (!jid || !jid.isDomain) this.fail(key, `contains ${show(d)}, which is not a valid domain name`);
      if (out.includes(jid.domain)) this.fail(key, `lists ${jid.domain} twice`);
      out.push(jid.domain);
    }
    return out;
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  return JSON.stringify(value) ?? String(value);
}
