import { buildConfig, ConfigError } from '../../src/config';
import { selectModules } from '../../src/server';
import { createTestHost } from '../helpers/test-host';
import offline from '../../modules/offline';

describe('config', () => {
  it('runs out of the box: localhost, TLS required, limits on', () => {
    const c = buildConfig({}, '/srv/xmppd/config');
    expect(c.domains).toEqual(['localhost']);
    expect(c.dataDir).toBe('/srv/xmppd/data');
    expect(c.c2s).toEqual({ host: '::', port: 5222, tlsPort: 5223, requireTls: true });
    expect(c.limits.maxStanzaBytes).toBe(262144);
    expect(c.limits.authTimeout).toBeGreaterThan(0);
    expect(c.limits).toMatchObject({ maxConnections: 20000, bytesPerSecond: 102400, burstBytes: 1048576, stanzasPerSecond: 100, stanzaBurst: 500 });
    // A maximal stanza fits in one burst, so shaping never delays a single large stanza.
    expect(c.limits.burstBytes).toBeGreaterThan(c.limits.maxStanzaBytes);
  });

  it('lets the environment override the file', () => {
    const c = buildConfig({ domains: ['a.example'], c2s: { port: 1 } }, '/x', {
      XMPPD_DOMAINS: 'One.Example, two.example', XMPPD_DATA_DIR: '/var/lib/xmppd', XMPPD_C2S_PORT: '15222',
      XMPPD_C2S_TLS_PORT: 'off', XMPPD_HTTP_PORT: '8080', XMPPD_HTTPS_PORT: '8443', XMPPD_LOG_LEVEL: 'debug',
      XMPPD_C2S_REQUIRE_TLS: 'false',
    });
    expect(c.domains).toEqual(['one.example', 'two.example']);
    expect(c.dataDir).toBe('/var/lib/xmppd');
    expect(c.c2s.port).toBe(15222);
    expect(c.c2s.tlsPort).toBeNull();
    expect(c.http).toMatchObject({ port: 8080, tlsPort: 8443 });
    expect(c.log.level).toBe('debug');
    expect(c.c2s.requireTls).toBe(false);
  });

  it.each([
    [{ domain: ['x'] }, '"domain" is not a known setting'],
    [{ domains: [] }, '"domains" must be a non-empty list'],
    [{ domains: ['bad domain'] }, '"domains" contains "bad domain", which is not a valid domain name'],
    [{ domains: ['a.example', 'A.example'] }, 'lists a.example twice'],
    [{ c2s: { port: 99999 } }, '"c2s.port" must be a port number 0-65535'],
    [{ c2s: { requireTls: 'maybe' } }, '"c2s.requireTls" must be true or false, got "maybe"'],
    [{ log: { level: 'loud' } }, '"log.level" must be one of fatal, error, warn, info, debug, trace, silent; got "loud"'],
    [{ limits: { maxStanzaBytes: 100 } }, '"limits.maxStanzaBytes" must be at least 10000'],
    [{ limits: { authTimeout: -1 } }, '"limits.authTimeout" must be greater than 0'],
    [{ limits: { bytesPerSecond: 1000, burstBytes: 500 } }, '"limits.burstBytes" must be at least limits.bytesPerSecond (1000)'],
    [{ limits: { stanzasPerSecond: 10, stanzaBurst: 5 } }, '"limits.stanzaBurst" must be at least limits.stanzasPerSecond (10)'],
    [{ limits: { maxConnections: 0 } }, '"limits.maxConnections" must be greater than 0'],
    [{ tls: { cert: '/a.pem' } }, 'set both tls.cert and tls.key'],
    [{ sessions: { resourceConflict: 'kick' } }, '"sessions.resourceConflict" must be one of replace, refuse'],
    [{ modules: { offline: 3 } }, '"modules.offline" must be a mapping'],
    [{ http: { trustedProxies: '10.0.0.1' } }, '"http.trustedProxies" must be a list of IP addresses or CIDR blocks, got "10.0.0.1"'],
    [{ http: { trustedProxies: ['10.0.0.0/33'] } }, '"http.trustedProxies" contains "10.0.0.0/33", which is not an IP address or CIDR block'],
    [{ http: { trustedProxies: ['proxy.local'] } }, '"http.trustedProxies" contains "proxy.local"'],
    [{ http: { allowedOrigins: ['https://chat.example.org/app'] } }, '"http.allowedOrigins" contains "https://chat.example.org/app", which is not an origin'],
    [{ http: { allowedOrigins: ['chat.example.org'] } }, '"http.allowedOrigins" contains "chat.example.org"'],
    [{ http: { allowedOrigins: 'https://chat.example.org' } }, '"http.allowedOrigins" must be a list of origins'],
    [{ http: { websocketSeeOtherUri: 'ftp://x.example/' } }, '"http.websocketSeeOtherUri" must be a URL starting with ws://, wss://, http://, https://; got "ftp://x.example/"'],
    [{ http: { allowInsecure: 'sometimes' } }, '"http.allowInsecure" must be true or false'],
    [{ http: { websocket: true } }, '"http.websocket" is not a known setting'],
    [{ http: { chatPath: 'chat' } }, '"http.chatPath" must be a path like /chat'],
    [{ http: { chatPath: '/chat/../admin' } }, '"http.chatPath" must be a path like /chat'],
    [{ http: { chatPath: '/my chat' } }, '"http.chatPath" must be a path like /chat'],
    [{ http: { chatPath: '' } }, '"http.chatPath" must be a non-empty string'],
    [{ http: { chatPath: '/xmpp-websocket' } }, '"http.chatPath" must not be /xmpp-websocket or overlap it'],
    [{ http: { chatPath: '/http-bind/chat' } }, '"http.chatPath" must not be /http-bind or overlap it'],
    [{ http: { chatPath: '/.well-known' } }, '"http.chatPath" must not be /.well-known or overlap it'],
    ['just text', 'must be a mapping'],
  ])('rejects %j naming the key', (raw, message) => {
    expect(() => buildConfig(raw, '/x')).toThrow(ConfigError);
    expect(() => buildConfig(raw, '/x')).toThrow(message);
  });

  it('has web listener defaults and reads its settings', () => {
    expect(buildConfig({}, '/x').http).toEqual({
      host: '::', port: 5280, tlsPort: 5443, trustedProxies: [], allowInsecure: false, allowedOrigins: null, websocketSeeOtherUri: null,
      chatPath: '/chat',
    });
    const c = buildConfig({
      http: {
        port: null, trustedProxies: ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'], allowInsecure: true,
        allowedOrigins: ['https://Chat.Example.org/', 'http://localhost:8080'], websocketSeeOtherUri: 'wss://xmpp.example.org/xmpp-websocket',
        chatPath: '/web/chat/',
      },
    }, '/x');
    expect(c.http).toEqual({
      host: '::', port: null, tlsPort: 5443, trustedProxies: ['127.0.0.1/32', '10.0.0.0/8', '::1/128', 'fd00::/8'], allowInsecure: true,
      allowedOrigins: ['https://chat.example.org', 'http://localhost:8080'], websocketSeeOtherUri: 'wss://xmpp.example.org/xmpp-websocket',
      chatPath: '/web/chat',
    });
    expect(buildConfig({ http: { allowedOrigins: null } }, '/x').http.allowedOrigins).toBeNull();
    expect(buildConfig({ http: { chatPath: null } }, '/x').http.chatPath).toBeNull();
    expect(buildConfig({ http: { chatPath: '/' } }, '/x').http.chatPath).toBe('/');
  });

  it('turns modules off with false and refuses unknown module names', () => {
    const names = selectModules(buildConfig({ modules: { vcard: false, offline: { maxMessages: 5 } } }, '/x')).map((m) => m.module.name);
    expect(names).not.toContain('vcard');
    expect(names).toContain('offline');
    expect(selectModules(buildConfig({ modules: { offline: { maxMessages: 5 } } }, '/x')).find((m) => m.module.name === 'offline')?.options)
      .toEqual({ maxMessages: 5 });
    expect(() => selectModules(buildConfig({ modules: { vcards: {} } }, '/x'))).toThrow('"vcards" is not a module of this server');
  });
});

describe('module options', () => {
  it('names a misspelt or mistyped module setting', async () => {
    await expect(createTestHost({ modules: [offline], options: { offline: { maxMesages: 5 } } }))
      .rejects.toThrow('"modules.offline.maxMesages" is not a setting of module offline (it has: maxMessages)');
    await expect(createTestHost({ modules: [offline], options: { offline: { maxMessages: 'many' } } }))
      .rejects.toThrow('"modules.offline.maxMessages" must be a number, got "many"');
  });
});
