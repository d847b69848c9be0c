import { AddressList, parseAddressBlock, resolveClient, isLoopback } from '../../src/net/http-proxy';

describe('address blocks (http.trustedProxies)', () => {
  it.each([
    ['192.0.2.7', { address: '192.0.2.7', prefix: 32, family: 'ipv4' }],
    ['10.0.0.0/8', { address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
    ['::1', { address: '::1', prefix: 128, family: 'ipv6' }],
    ['fd00::/8', { address: 'fd00::', prefix: 8, family: 'ipv6' }],
    ['::ffff:127.0.0.1', { address: '127.0.0.1', prefix: 32, family: 'ipv4' }],
  ])('parses %s', (s, expected) => {
    expect(parseAddressBlock(s)).toEqual(expected);
  });

  it.each(['localhost', '10.0.0.0/33', '::/129', '1.2.3', '10.0.0.0/x', '', '10.0.0.0/'])('rejects %j', (s) => {
    expect(parseAddressBlock(s)).toBeUndefined();
  });

  it('matches addresses, IPv4-mapped IPv6 included', () => {
    const list = new AddressList(['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
    expect(list.has('10.200.1.1')).toBe(true);
    expect(list.has('::ffff:10.1.1.1')).toBe(true);
    expect(list.has('192.0.2.7')).toBe(true);
    expect(list.has('192.0.2.8')).toBe(false);
    expect(list.has('fd12:3456::1')).toBe(true);
    expect(list.has('2001:db8::1')).toBe(false);
    expect(list.has('unknown')).toBe(false);
    expect(new AddressList([]).has('127.0.0.1')).toBe(false);
  });

  it('knows loopback', () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('127.8.9.10')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopback('192.0.2.1')).toBe(false);
  });
});

describe('resolveClient', () => {
  const proxies = new AddressList(['10.0.0.0/8']);

  it('believes nothing from a peer that is not a trusted proxy', () => {
    const c = resolveClient('::ffff:192.0.2.1', false, { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', host: 'chat.example.org' }, proxies);
    expect(c).toEqual({ address: '192.0.2.1', peer: '192.0.2.1', proxied: false, secure: false, scheme: 'http', host: 'chat.example.org' });
  });

  it('counts loopback and TLS as secure', () => {
    expect(resolveClient('127.0.0.1', false, {}, proxies)).toMatchObject({ secure: true, scheme: 'http' });
    expect(resolveClient('192.0.2.1', true, {}, proxies)).toMatchObject({ secure: true, scheme: 'https' });
  });

  it('takes the right-most untrusted X-Forwarded-For hop behind trusted proxies', () => {
    const headers = { 'x-forwarded-for': '198.51.100.1, 203.0.113.9, 10.0.0.2' };
    expect(resolveClient('10.0.0.1', false, headers, proxies)).toMatchObject({ address: '203.0.113.9', peer: '10.0.0.1', proxied: true });
    // A client cannot hide behind a forged left part.
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-for': '10.9.9.9, 203.0.113.9' }, proxies).address).toBe('203.0.113.9');
    // All hops trusted: the left-most.
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-for': '10.0.0.3, 10.0.0.2' }, proxies).address).toBe('10.0.0.3');
    // No header: the proxy itself.
    expect(resolveClient('10.0.0.1', false, {}, proxies).address).toBe('10.0.0.1');
  });

  it('reads hops with ports, brackets and quotes, and stops at junk', () => {
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-for': '203.0.113.9:4711' }, proxies).address).toBe('203.0.113.9');
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-for': '"[2001:db8::1]:4711"' }, proxies).address).toBe('2001:db8::1');
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-for': '2001:db8::2' }, proxies).address).toBe('2001:db8::2');
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-for': '203.0.113.9, unknown' }, proxies).address).toBe('10.0.0.1');
  });

  it('takes secure-ness and scheme from the right-most X-Forwarded-Proto of a trusted proxy', () => {
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-proto': 'https' }, proxies)).toMatchObject({ secure: true, scheme: 'https' });
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-proto': 'http' }, proxies)).toMatchObject({ secure: false, scheme: 'http' });
    expect(resolveClient('10.0.0.1', false, { 'x-forwarded-proto': 'https, http' }, proxies)).toMatchObject({ secure: false });
    // TLS terminated in front without saying so: trusted to be secure.
    expect(resolveClient('10.0.0.1', false, {}, proxies)).toMatchObject({ secure: true, scheme: 'http' });
  });

  it('takes the host from X-Forwarded-Host of a trusted proxy and drops malformed hosts', () => {
    expect(resolveClient('10.0.0.1', false, { host: 'backend:5280', 'x-forwarded-host': 'chat.example.org' }, proxies).host).toBe('chat.example.org');
    expect(resolveClient('192.0.2.1', false, { host: 'backend:5280', 'x-forwarded-host': 'chat.example.org' }, proxies).host).toBe('backend:5280');
    expect(resolveClient('192.0.2.1', false, { host: '[::1]:5280' }, proxies).host).toBe('[::1]:5280');
    expect(resolveClient('192.0.2.1', false, { host: 'evil"><x' }, proxies).host).toBeUndefined();
    expect(resolveClient('192.0.2.1', false, {}, proxies).host).toBeUndefined();
  });
});
