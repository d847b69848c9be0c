import { x } from '../../src/xml/element';
import { parseXml } from '../../src/xml/parse';
import {
  BodyError, NS_HTTPBIND, isEmptyRequest, parseBody, parseRid, parseUint, qualifyPayload, renderBody, terminalBody, xboshAttr,
} from '../../src/net/bosh/body';

const limits = { maxStanzaBytes: 10_000, maxDepth: 33, maxAttributes: 64 };

function badRequest(s: string): string | undefined {
  try {
    parseBody(Buffer.from(s), limits);
  } catch (e) {
    return e instanceof BodyError ? e.condition : 'other';
  }
  return undefined;
}

describe('BOSH <body/> parsing', () => {
  test('a body with stanzas; children keep their own namespaces', () => {
    const b = parseBody(Buffer.from(`<body rid='5' sid='s' xmlns='${NS_HTTPBIND}'><message xmlns='jabber:client' to='a@b'><body>hi</body></message><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></body>`), limits);
    expect(b.attrs.rid).toBe('5');
    expect(b.elements.map((e) => [e.name, e.attrs.xmlns])).toEqual([['message', 'jabber:client'], ['auth', 'urn:ietf:params:xml:ns:xmpp-sasl']]);
  });

  test('not XML, another root, another namespace, DTDs and bad UTF-8 are bad-request', () => {
    expect(badRequest('hello')).toBe('bad-request');
    expect(badRequest(`<foo xmlns='${NS_HTTPBIND}'/>`)).toBe('bad-request');
    expect(badRequest(`<body xmlns='urn:other'/>`)).toBe('bad-request');
    expect(badRequest(`<body/>`)).toBe('bad-request');
    expect(badRequest(`<!DOCTYPE body><body xmlns='${NS_HTTPBIND}'/>`)).toBe('bad-request');
    expect(badRequest(`<body xmlns='${NS_HTTPBIND}'><a>`)).toBe('bad-request');
    expect(() => parseBody(Buffer.from([0x3c, 0xff, 0x3e]), limits)).toThrow(BodyError);
    expect(badRequest(`<?xml version='1.0'?><body xmlns='${NS_HTTPBIND}' rid='1'/>`)).toBeUndefined();
  });

  test('the size limit applies to the whole body', () => {
    expect(badRequest(`<body xmlns='${NS_HTTPBIND}'><a>${'x'.repeat(20_000)}</a></body>`)).toBe('bad-request');
  });

  test('rid: an integer from 1 to 2^53-1', () => {
    expect(parseRid('1')).toBe(1);
    expect(parseRid('9007199254740991')).toBe(9007199254740991);
    expect(parseRid('9007199254740992')).toBeUndefined();
    expect(parseRid('0')).toBeUndefined();
    expect(parseRid('-3')).toBeUndefined();
    expect(parseRid('1e5')).toBeUndefined();
    expect(parseRid(undefined)).toBeUndefined();
    expect(parseUint(' 60 ')).toBe(60);
    expect(parseUint('x')).toBeUndefined();
  });

  test('xmpp:* attributes are found by namespace, whatever the prefix', () => {
    const a = parseXml(`<body xmlns='${NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0' xmpp:restart='true'/>`);
    expect(xboshAttr(a, 'version')).toBe('1.0');
    expect(xboshAttr(a, 'restart')).toBe('true');
    const b = parseXml(`<body xmlns='${NS_HTTPBIND}' xmlns:q='urn:xmpp:xbosh' q:restart='true' xmlns:z='urn:other' z:version='9'/>`);
    expect(xboshAttr(b, 'restart')).toBe('true');
    expect(xboshAttr(b, 'version')).toBeUndefined();
    expect(isEmptyRequest(b)).toBe(false);
    expect(isEmptyRequest(parseXml(`<body xmlns='${NS_HTTPBIND}' rid='2'/>`))).toBe(true);
    expect(isEmptyRequest(parseXml(`<body xmlns='${NS_HTTPBIND}' pause='5'/>`))).toBe(false);
  });

  test('payloads without a namespace are taken as jabber:client', () => {
    expect(qualifyPayload(x('message')).attrs.xmlns).toBe('jabber:client');
    expect(qualifyPayload(x('message', { xmlns: NS_HTTPBIND })).attrs.xmlns).toBe('jabber:client');
    expect(qualifyPayload(x('auth', { xmlns: 'urn:ietf:params:xml:ns:xmpp-sasl' })).attrs.xmlns).toBe('urn:ietf:params:xml:ns:xmpp-sasl');
  });
});

describe('BOSH <body/> rendering', () => {
  test('empty body, payloads, and the stream prefix declared when needed', () => {
    expect(renderBody({})).toBe(`<body xmlns="${NS_HTTPBIND}"/>`);
    expect(renderBody({ type: 'error' })).toBe(`<body xmlns="${NS_HTTPBIND}" type="error"/>`);
    const s = renderBody({}, [{ xml: '<stream:features/>', streamPrefix: true }, { xml: '<iq xmlns="jabber:client"/>', streamPrefix: false }]);
    const el = parseXml(s);
    expect(el.elements.map((e) => [e.name, e.attrs.xmlns])).toEqual([['features', 'http://etherx.jabber.org/streams'], ['iq', 'jabber:client']]);
  });

  test('terminal bodies', () => {
    expect(parseXml(terminalBody('item-not-found')).attrs).toEqual({ xmlns: NS_HTTPBIND, type: 'terminate', condition: 'item-not-found' });
    expect(parseXml(terminalBody(undefined)).attrs).toEqual({ xmlns: NS_HTTPBIND, type: 'terminate' });
  });
});
