import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { x, type Element } from '../../src/xml/element';
import { NS_STANZAS } from '../../src/errors';
import { createTestHost, type FakeSession, type TestHost } from '../helpers/test-host';
import offline, { NS_DELAY, NS_HINTS, NS_CHATSTATES, shouldStore } from '../../modules/offline';

const ALICE = 'alice@example.test/phone';
const BOB = 'bob@example.test';
const T0 = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const STAMP0 = '2024-01-02T03:04:05.678Z';

const chat = (id: string, body: string, type = 'chat') => x('message', { to: BOB, type, id }, x('body', null, body));
/** What bob gets: the message as alice's session sent it (from stamped), plus the delay. */
const delivered = (msg: Element, stamp: string) =>
  msg.withAttrs({ from: ALICE }).clone().append(x('delay', { xmlns: NS_DELAY, from: 'example.test', stamp }, 'Offline Storage'));
const bounce = (id: string, condition: string, body?: string, text?: string) =>
  x('message', { type: 'error', id, from: BOB, to: ALICE },
    body !== undefined ? x('body', null, body) : undefined,
    x('error', { type: 'cancel' }, x(condition, { xmlns: NS_STANZAS }),
      text !== undefined ? x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text) : undefined));

describe('offline (XEP-0160)', () => {
  let host: TestHost;
  let now: number;
  let clock: jest.SpyInstance<number, []>;
  beforeEach(async () => {
    now = T0;
    clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    host = await createTestHost({ modules: [offline], options: { offline: { maxMessages: 3 } } });
    await host.core.createUser(BOB, 'secret');
  });
  afterEach(async () => {
    await host.close();
    clock.mockRestore();
  });

  /** Bob logs in and sends initial presence (what the presence module does, simulated). */
  async function comeOnline(resource: string, priority = 0, h: TestHost = host): Promise<FakeSession> {
    const s = await h.connect(`${BOB}/${resource}`);
    s.presence = x('presence', null, priority !== 0 ? x('priority', null, String(priority)) : undefined);
    s.priority = priority;
    await h.core.hooks.fire('presence/initial', { session: s });
    return s;
  }

  it('stores messages for an offline account and delivers them in order, with delay stamps, on initial presence', async () => {
    const alice = await host.connect(ALICE);
    const m1 = chat('m1', 'first');
    const m2 = x('message', { to: BOB, id: 'm2' }, x('subject', null, 'normal'), x('body', null, 'second'));
    const m3 = chat('m3', 'third');
    await alice.receive(m1);
    now += 1000;
    await alice.receive(m2);
    now += 1000;
    await alice.receive(m3);
    expect(alice.take()).toEqual([]); // stored: no error for the sender
    const bob = await comeOnline('laptop');
    expect(bob.take()).toEqual([
      delivered(chat('m1', 'first'), STAMP0),
      delivered(x('message', { to: BOB, id: 'm2' }, x('subject', null, 'normal'), x('body', null, 'second')), '2024-01-02T03:04:06.678Z'),
      delivered(chat('m3', 'third'), '2024-01-02T03:04:07.678Z'),
    ]);
  });

  it('delivers once: the messages are gone after delivery', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(chat('m1', 'once'));
    const laptop = await comeOnline('laptop');
    expect(laptop.take()).toHaveLength(1);
    const phone = await comeOnline('phone');
    expect(phone.take()).toEqual([]);
    await host.disconnect(laptop);
    await host.disconnect(phone);
    const later = await comeOnline('tablet');
    expect(later.take()).toEqual([]);
  });

  it('delivers once when two sessions send initial presence at the same time', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(chat('m1', 'one'));
    await alice.receive(chat('m2', 'two'));
    const a = await host.connect(`${BOB}/a`);
    const b = await host.connect(`${BOB}/b`);
    for (const s of [a, b]) s.presence = x('presence');
    await Promise.all([a, b].map((session) => host.core.hooks.fire('presence/initial', { session })));
    expect(a.take().map((m) => m.attrs.id)).toEqual(['m1', 'm2']);
    expect(b.take()).toEqual([]);
  });

  it('keeps the messages while the account only has negative priority', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(chat('m1', 'wait for it'));
    const hidden = await comeOnline('bot', -1);
    expect(hidden.take()).toEqual([]);
    const laptop = await comeOnline('laptop', 5);
    expect(laptop.take()).toEqual([delivered(chat('m1', 'wait for it'), STAMP0)]);
  });

  it('stores a message to a resource that is gone (chat falls back to the bare JID)', async () => {
    const alice = await host.connect(ALICE);
    const msg = x('message', { to: `${BOB}/gone`, type: 'chat', id: 'm1' }, x('body', null, 'hello'));
    await alice.receive(msg);
    const bob = await comeOnline('laptop');
    expect(bob.take()).toEqual([delivered(msg, STAMP0)]);
  });

  it('does not store headline, groupchat or error messages', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(chat('h1', 'news', 'headline'));
    await alice.receive(chat('g1', 'room', 'groupchat'));
    await alice.receive(chat('e1', 'oops', 'error'));
    // groupchat is bounced by the router (RFC 6121 §8.5.2.2.1); headline and error are dropped silently.
    expect(alice.take()).toEqual([bounce('g1', 'service-unavailable', 'room')]);
    const bob = await comeOnline('laptop');
    expect(bob.take()).toEqual([]);
  });

  it('bounces with service-unavailable when the account\'s storage is full', async () => {
    const alice = await host.connect(ALICE);
    for (const id of ['m1', 'm2', 'm3']) await alice.receive(chat(id, id));
    await alice.receive(chat('m4', 'one too many'));
    expect(alice.take()).toEqual([bounce('m4', 'service-unavailable', 'one too many', 'Offline message storage for the recipient is full')]);
    const bob = await comeOnline('laptop');
    expect(bob.take().map((m) => m.attrs.id)).toEqual(['m1', 'm2', 'm3']);
    // Delivered messages free the quota.
    await host.disconnect(bob);
    await alice.receive(chat('m5', 'room again'));
    expect(alice.take()).toEqual([]);
  });

  it('honours XEP-0334 hints', async () => {
    const alice = await host.connect(ALICE);
    const noStore = chat('n1', 'ephemeral').append(x('no-store', { xmlns: NS_HINTS }));
    const noPermanent = chat('n2', 'off the record').append(x('no-permanent-store', { xmlns: NS_HINTS }));
    const store = x('message', { to: BOB, type: 'chat', id: 'n3' }, x('store', { xmlns: NS_HINTS }), x('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'x' }));
    await alice.receive(noStore);
    await alice.receive(noPermanent);
    await alice.receive(store);
    expect(alice.take()).toEqual([bounce('n1', 'service-unavailable', 'ephemeral')]);
    const bob = await comeOnline('laptop');
    expect(bob.take()).toEqual([delivered(noPermanent, STAMP0), delivered(store, STAMP0)]);
  });

  it('does not store chat-state-only or empty messages, but stores other bodyless payloads', async () => {
    const alice = await host.connect(ALICE);
    const composing = x('message', { to: BOB, type: 'chat', id: 'c1' }, x('thread', null, 't1'), x('composing', { xmlns: NS_CHATSTATES }));
    const empty = x('message', { to: BOB, id: 'c2' });
    const receipt = x('message', { to: BOB, id: 'c3' }, x('received', { xmlns: 'urn:xmpp:receipts', id: 'm0' }));
    await alice.receive(composing);
    await alice.receive(empty);
    await alice.receive(receipt);
    expect(alice.take()).toEqual([bounce('c1', 'service-unavailable'), bounce('c2', 'service-unavailable')]);
    const bob = await comeOnline('laptop');
    expect(bob.take()).toEqual([delivered(receipt, STAMP0)]);
  });

  it('decides what to store by XEP-0160 §3 and the hints', () => {
    const m = (attrs: Record<string, string>, ...children: Element[]) => x('message', attrs, ...children);
    expect(shouldStore(m({}, x('body', null, 'hi')))).toBe(true);
    expect(shouldStore(m({ type: 'normal' }, x('body', null, 'hi')))).toBe(true);
    expect(shouldStore(m({ type: 'headline' }, x('body', null, 'hi')))).toBe(false);
    expect(shouldStore(m({ type: 'groupchat' }, x('body', null, 'hi')))).toBe(false);
    expect(shouldStore(m({ type: 'error' }, x('body', null, 'hi'), x('store', { xmlns: NS_HINTS })))).toBe(false);
    expect(shouldStore(m({ type: 'headline' }, x('body', null, 'hi'), x('store', { xmlns: NS_HINTS })))).toBe(true);
    expect(shouldStore(m({ type: 'chat' }, x('body', null, 'hi'), x('no-store', { xmlns: NS_HINTS }), x('store', { xmlns: NS_HINTS })))).toBe(false);
    expect(shouldStore(m({ type: 'chat' }, x('active', { xmlns: NS_CHATSTATES }), x('store', { xmlns: NS_HINTS })))).toBe(true);
    expect(shouldStore(m({ type: 'chat' }, x('active', { xmlns: NS_CHATSTATES }), x('origin-id', { xmlns: 'urn:xmpp:sid:0', id: 'a' })))).toBe(false);
    expect(shouldStore(m({ type: 'chat', xmlns: 'jabber:client' }, x('thread', null, 't'), x('gone', { xmlns: NS_CHATSTATES })))).toBe(false);
    expect(shouldStore(m({ type: 'chat' }, x('subject', null, 'topic')))).toBe(true);
    expect(shouldStore(m({ type: 'chat' }, x('encrypted', { xmlns: 'eu.siacs.conversations.axolotl' })))).toBe(true);
  });

  it('bounces messages for an account that does not exist (router), storing nothing', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(x('message', { to: 'nobody@example.test', type: 'chat', id: 'x1' }, x('body', null, 'hi')));
    expect(alice.take()).toEqual([
      x('message', { type: 'error', id: 'x1', from: 'nobody@example.test', to: ALICE }, x('body', null, 'hi'),
        x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS_STANZAS }))),
    ]);
  });

  it('keeps undelivered messages when the session closes before delivery', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(chat('m1', 'keep me'));
    const s = await host.connect(`${BOB}/flaky`);
    s.presence = x('presence');
    await host.disconnect(s);
    await host.core.hooks.fire('presence/initial', { session: s });
    const bob = await comeOnline('laptop');
    expect(bob.take()).toEqual([delivered(chat('m1', 'keep me'), STAMP0)]);
  });

  it('keeps stored messages across unload and load', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(chat('m1', 'still here'));
    await host.core.modules.unload('offline');
    await host.core.modules.load(offline, { maxMessages: 3 });
    const bob = await comeOnline('laptop');
    expect(bob.take()).toEqual([delivered(chat('m1', 'still here'), STAMP0)]);
  });

  it('does not store while unloaded: the router bounces', async () => {
    const alice = await host.connect(ALICE);
    await host.core.modules.unload('offline');
    await alice.receive(chat('m1', 'nobody home'));
    expect(alice.take()).toEqual([bounce('m1', 'service-unavailable', 'nobody home')]);
  });

  it('deletes the stored messages of a deleted account', async () => {
    const alice = await host.connect(ALICE);
    await alice.receive(chat('m1', 'for old bob'));
    await host.core.deleteUser(BOB);
    await host.core.createUser(BOB, 'secret');
    const bob = await comeOnline('laptop');
    expect(bob.take()).toEqual([]);
  });

  it('refuses a bad maxMessages option at load', async () => {
    await host.core.modules.unload('offline');
    await expect(host.core.modules.load(offline, { maxMessages: -1 })).rejects.toThrow(/offline.*maxMessages/);
  });
});

describe('offline storage on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xmppd-offline-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('survives a restart of the server core', async () => {
    const database = join(dir, 'xmppd.sqlite');
    const first = await createTestHost({ modules: [offline], database });
    await first.core.createUser(BOB, 'secret');
    const alice = await first.connect(ALICE);
    await alice.receive(chat('m1', 'before the restart'));
    await alice.receive(chat('m2', 'also before'));
    await first.close();

    const second = await createTestHost({ modules: [offline], database });
    try {
      const bob = await second.connect(`${BOB}/laptop`);
      bob.presence = x('presence');
      await second.core.hooks.fire('presence/initial', { session: bob });
      const got = bob.take();
      expect(got.map((m) => [m.attrs.id, m.getChildText('body'), m.attrs.from])).toEqual([
        ['m1', 'before the restart', ALICE],
        ['m2', 'also before', ALICE],
      ]);
      for (const m of got) expect(m.getChild('delay', NS_DELAY)?.attrs.stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    } finally {
      await second.close();
    }
  });
});
