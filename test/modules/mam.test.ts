import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Element, x } from '../../src/xml/element';
import { NS_STANZAS } from '../../src/errors';
import { Jid } from '../../src/jid';
import { defineModule } from '../../src/module';
import { createTestHost, type FakeSession, type TestHost } from '../helpers/test-host';
import mam, {
  archivable, FULLTEXT_FIELD, NS_DATA, NS_DELAY, NS_FORWARD, NS_FULLTEXT, NS_HINTS, NS_MAM, NS_MAM_EXTENDED, NS_RSM, NS_SID,
  parseDateTime, WITHTEXT_FIELD, type ArchiveService,
} from '../../modules/mam';
import { IdCodec } from '../../modules/mam/store';
import { archiveFileFor, MAX_BACKLOG } from '../../modules/mam/worker-store';
import { openDatabase } from '../../src/storage/database';
import offline from '../../modules/offline';
import roster from '../../modules/roster';
import disco, { NS_DISCO_INFO } from '../../modules/disco';

const D = 'example.test';
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';
const T0 = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const STAMP0 = '2024-01-02T03:04:05.678Z';
const NS_CLIENT = 'jabber:client';

/** Hands the archive service to the test, as the MUC module gets it. */
function probe(out: { archive?: ArchiveService }) {
  return defineModule({ name: 'probe', setup(api) { out.archive = api.service('archive'); } });
}

const chat = (to: string, body: string, id?: string, ...extra: Element[]) =>
  x('message', { to, type: 'chat', id }, x('body', null, body), ...extra);

interface QueryOpts {
  id?: string;
  to?: string;
  queryid?: string;
  fields?: Record<string, string | string[]>;
  formType?: string;
  rsm?: { max?: number | string; after?: string; before?: string; index?: number | string };
  flip?: boolean;
}

function queryElement(o: QueryOpts = {}): Element {
  const form = o.fields === undefined ? undefined : x('x', { xmlns: NS_DATA, type: 'submit' },
    x('field', { var: 'FORM_TYPE', type: 'hidden' }, x('value', null, o.formType ?? NS_MAM)),
    Object.entries(o.fields).map(([name, v]) => x('field', { var: name }, (Array.isArray(v) ? v : [v]).map((s) => x('value', null, s)))));
  const r = o.rsm;
  const set = r === undefined ? undefined : x('set', { xmlns: NS_RSM },
    r.max !== undefined ? x('max', null, String(r.max)) : undefined,
    r.after !== undefined ? x('after', null, r.after) : undefined,
    r.before !== undefined ? x('before', null, r.before) : undefined,
    r.index !== undefined ? x('index', null, String(r.index)) : undefined);
  return x('query', { xmlns: NS_MAM, queryid: o.queryid }, form, set, o.flip ? x('flip-page') : undefined);
}

/** Sends a query as the client (dropping what it received before); returns the result messages and the final IQ. */
async function query(s: FakeSession, o: QueryOpts = {}): Promise<{ results: Element[]; reply: Element }> {
  s.take();
  await s.receive(x('iq', { type: 'set', id: o.id ?? 'q', to: o.to }, queryElement(o)));
  const out = s.take();
  const reply = out.pop();
  if (reply === undefined || reply.name !== 'iq') throw new Error('no IQ reply: ' + out.join('\n'));
  return { results: out, reply };
}

const resultOf = (m: Element) => m.getChild('result', NS_MAM)!;
const forwardedOf = (m: Element) => resultOf(m).getChild('forwarded', NS_FORWARD)!.getChild('message', NS_CLIENT)!;
const idsOf = (results: Element[]) => results.map((m) => resultOf(m).attrs.id!);
const bodiesOf = (results: Element[]) => results.map((m) => forwardedOf(m).getChildText('body'));
/** The <fin/> of a reply, as plain values. */
function finOf(reply: Element) {
  expect(reply.attrs.type).toBe('result');
  const fin = reply.getChild('fin', NS_MAM)!;
  const set = fin.getChild('set', NS_RSM)!;
  const first = set.getChild('first');
  return {
    complete: fin.attrs.complete,
    first: first?.text(),
    index: first?.attrs.index === undefined ? undefined : Number(first.attrs.index),
    last: set.getChildText('last'),
    count: set.getChildText('count') === undefined ? undefined : Number(set.getChildText('count')),
  };
}
const iqError = (id: string, to: string, condition: string, type: string, text?: string, from?: string) =>
  x('iq', { type: 'error', id, from, to },
    x('error', { type }, x(condition, { xmlns: NS_STANZAS }), text !== undefined ? x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text) : undefined));

describe('mam (XEP-0313)', () => {
  let host: TestHost;
  let now: number;
  let clock: jest.SpyInstance<number, []>;
  const grabbed: { archive?: ArchiveService } = {};
  let alice: FakeSession;
  let bob: FakeSession;

  beforeEach(async () => {
    now = T0;
    clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    host = await createTestHost({ modules: [roster, disco, mam, offline, probe(grabbed)] });
    alice = await host.connect(`${ALICE}/phone`);
    bob = await host.connect(`${BOB}/laptop`);
  });
  afterEach(async () => {
    await host.close();
    clock.mockRestore();
  });

  /** alice and bob chat: n messages alternating, one second apart, bodies 'm0', 'm1', ... */
  async function conversation(n: number, start = 0): Promise<void> {
    for (let i = start; i < start + n; i++) {
      const [from, to] = i % 2 === 0 ? [alice, `${BOB}/laptop`] : [bob, `${ALICE}/phone`];
      await from.receive(chat(to, `m${i}`, `id${i}`));
      now += 1000;
    }
    alice.take();
    bob.take();
  }

  describe('archiving', () => {
    it('archives a chat for both parties and stamps the recipient\'s archive id on the delivered copy', async () => {
      await alice.receive(chat(`${BOB}/laptop`, 'Hail to thee', 'm1'));
      const [delivered, ...rest] = bob.take();
      expect(rest).toEqual([]);
      const sid = delivered!.getChild('stanza-id', NS_SID)!;
      expect(sid.attrs.by).toBe(BOB);
      expect(sid.attrs.id).toMatch(/^[a-z2-7]{26}$/);
      expect(delivered).toEqual(x('message', { to: `${BOB}/laptop`, type: 'chat', id: 'm1', from: `${ALICE}/phone` },
        x('body', null, 'Hail to thee'), x('stanza-id', { xmlns: NS_SID, id: sid.attrs.id, by: BOB })));
      expect(alice.take()).toEqual([]); // the sender's copy carries no stanza-id: nothing is sent back

      // bob's archive: the message as received, without his own stanza-id, with the archive time.
      const b = await query(bob, { id: 'q1', queryid: 'f27' });
      expect(b.results).toEqual([
        x('message', { from: BOB, to: `${BOB}/laptop`, id: b.results[0]!.attrs.id },
          x('result', { xmlns: NS_MAM, queryid: 'f27', id: sid.attrs.id },
            x('forwarded', { xmlns: NS_FORWARD },
              x('delay', { xmlns: NS_DELAY, stamp: STAMP0 }),
              x('message', { xmlns: NS_CLIENT, to: `${BOB}/laptop`, type: 'chat', id: 'm1', from: `${ALICE}/phone` }, x('body', null, 'Hail to thee'))))),
      ]);
      expect(b.reply).toEqual(x('iq', { type: 'result', id: 'q1', to: `${BOB}/laptop` },
        x('fin', { xmlns: NS_MAM, complete: 'true' },
          x('set', { xmlns: NS_RSM }, x('first', { index: '0' }, sid.attrs.id), x('last', null, sid.attrs.id), x('count', null, '1')))));

      // alice's archive has it too, under an id of her own.
      const a = await query(alice);
      expect(a.results).toHaveLength(1);
      expect(resultOf(a.results[0]!).attrs.id).not.toBe(sid.attrs.id);
      expect(forwardedOf(a.results[0]!)).toEqual(
        x('message', { xmlns: NS_CLIENT, to: `${BOB}/laptop`, type: 'chat', id: 'm1', from: `${ALICE}/phone` }, x('body', null, 'Hail to thee')));
      expect(finOf(a.reply)).toEqual({ complete: 'true', first: resultOf(a.results[0]!).attrs.id, index: 0, last: resultOf(a.results[0]!).attrs.id, count: 1 });
    });

    it('archives a message that goes to offline storage, and the stored copy carries the stanza-id', async () => {
      await host.core.createUser(CAROL, 'secret');
      await alice.receive(chat(CAROL, 'while you were out', 'o1'));
      const carol = await host.connect(`${CAROL}/desk`);
      carol.presence = x('presence');
      await host.core.hooks.fire('presence/initial', { session: carol });
      const [stored] = carol.take();
      const sid = stored!.getChild('stanza-id', NS_SID)!;
      expect(sid.attrs.by).toBe(CAROL);
      const { results } = await query(carol);
      expect(idsOf(results)).toEqual([sid.attrs.id]);
      expect(bodiesOf(results)).toEqual(['while you were out']);
      expect(bodiesOf((await query(alice)).results)).toEqual(['while you were out']);
    });

    it('archives a message to a bare JID delivered to several resources once', async () => {
      const laptop = bob;
      const phone = await host.connect(`${BOB}/phone`);
      laptop.presence = x('presence');
      phone.presence = x('presence');
      await alice.receive(chat(BOB, 'to both', 'b1'));
      const [toLaptop] = laptop.take();
      const [toPhone] = phone.take();
      expect(toLaptop!.getChild('stanza-id', NS_SID)).toEqual(toPhone!.getChild('stanza-id', NS_SID));
      expect(bodiesOf((await query(phone)).results)).toEqual(['to both']);
    });

    it('archives a message to the own account once, as received', async () => {
      const desk = await host.connect(`${ALICE}/desk`);
      await alice.receive(chat(`${ALICE}/desk`, 'note to self', 's1'));
      const [got] = desk.take();
      expect(got!.getChild('stanza-id', NS_SID)!.attrs.by).toBe(ALICE);
      const { results } = await query(alice, { fields: { with: ALICE } });
      expect(bodiesOf(results)).toEqual(['note to self']);
      expect(finOf((await query(alice)).reply).count).toBe(1);
    });

    it('archives chat and normal messages with a body, and nothing else unless a hint says so', async () => {
      const to = `${BOB}/laptop`;
      const sends: [Element, boolean][] = [
        [x('message', { to, type: 'chat' }, x('active', { xmlns: 'http://jabber.org/protocol/chatstates' })), false],
        [x('message', { to }, x('body', null, 'normal')), true],
        [x('message', { to, type: 'headline' }, x('body', null, 'headline')), false],
        [x('message', { to, type: 'groupchat' }, x('body', null, 'groupchat')), false],
        [x('message', { to, type: 'error' }, x('body', null, 'error')), false],
        [chat(to, 'no-store', undefined, x('no-store', { xmlns: NS_HINTS })), false],
        [chat(to, 'no-permanent-store', undefined, x('no-permanent-store', { xmlns: NS_HINTS })), false],
        [x('message', { to, type: 'chat' }, x('encrypted', { xmlns: 'eu.siacs.conversations.axolotl' }), x('store', { xmlns: NS_HINTS })), true],
        [x('message', { to, type: 'headline' }, x('body', null, 'stored headline'), x('store', { xmlns: NS_HINTS })), true],
        // <no-store/> wins over <store/>, wherever it is; a body of another namespace is no body.
        [x('message', { to, type: 'chat' }, x('store', { xmlns: NS_HINTS }), x('body', null, 'both hints'), x('no-store', { xmlns: NS_HINTS })), false],
        [x('message', { to, type: 'chat' }, x('body', { xmlns: 'urn:example:not-a-body' }, 'foreign')), false],
      ];
      for (const [msg] of sends) await alice.receive(msg);
      const archived = sends.filter(([, yes]) => yes).map(([m]) => m.getChildText('body'));
      expect(sends.map(([m]) => archivable(m))).toEqual(sends.map(([, yes]) => yes));
      expect(bodiesOf((await query(alice)).results)).toEqual(archived);
      expect(bodiesOf((await query(bob)).results)).toEqual(archived);
    });

    it('does not archive messages to an account that does not exist (they bounce)', async () => {
      await alice.receive(chat('nobody@example.test', 'anyone?', 'n1'));
      expect(alice.take()).toEqual([x('message', { type: 'error', id: 'n1', from: 'nobody@example.test', to: `${ALICE}/phone` },
        x('body', null, 'anyone?'), x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS_STANZAS })))]);
      const row = host.core.db.prepare("SELECT count(*) FROM mam_row m JOIN mam_jid j ON (j.id = m.from_id AND m.from_nonce IS NOT NULL) OR (j.id = m.to_id AND m.to_nonce IS NOT NULL) WHERE j.jid = 'nobody@example.test'").pluck().get();
      expect(row).toBe(0);
      expect(bodiesOf((await query(alice)).results)).toEqual(['anyone?']); // the sender sent it, though
    });

    it('strips stanza-ids a client forged "by" local accounts or the server, and keeps others', async () => {
      const remote = x('stanza-id', { xmlns: NS_SID, id: 'r1', by: 'room@conference.elsewhere.test' });
      await alice.receive(chat(`${BOB}/laptop`, 'forged', 'f1',
        x('stanza-id', { xmlns: NS_SID, id: 'fake-bob', by: BOB }),
        x('stanza-id', { xmlns: NS_SID, id: 'fake-alice', by: ALICE }),
        x('stanza-id', { xmlns: NS_SID, id: 'fake-server', by: D }),
        remote));
      const [got] = bob.take();
      const ids = got!.getChildren('stanza-id', NS_SID);
      expect(ids).toHaveLength(2);
      expect(ids[0]).toEqual(remote);
      expect(ids[1]!.attrs.by).toBe(BOB);
      expect(ids[1]!.attrs.id).not.toBe('fake-bob');
      // The archives hold the stripped message too.
      expect(forwardedOf((await query(alice)).results[0]!).getChildren('stanza-id', NS_SID)).toEqual([remote]);
    });

    it('strips a forged stanza-id from a message routed by a module, even one it does not archive', async () => {
      await host.core.router.route(x('message', { from: 'svc.example.test', to: `${BOB}/laptop`, type: 'headline' },
        x('body', null, 'news'), x('stanza-id', { xmlns: NS_SID, id: 'fake', by: BOB })));
      expect(bob.take()).toEqual([x('message', { from: 'svc.example.test', to: `${BOB}/laptop`, type: 'headline' }, x('body', null, 'news'))]);
    });

    it('writes a batch per event-loop turn, and a query right after an append sees it', async () => {
      const archive = grabbed.archive!;
      const ids = await Promise.all([1, 2, 3].map((i) => archive.append(BOB, { with: ALICE, stanza: chat(BOB, `b${i}`), direction: 'in' })));
      // Not written yet: the batch is flushed at the end of this turn (or by the query below).
      expect(host.core.db.prepare('SELECT count(*) FROM mam_row').pluck().get()).toBe(0);
      const { results } = await query(bob);
      expect(idsOf(results)).toEqual(ids);
      expect(new Set(ids).size).toBe(3);
    });
  });

  describe('queries', () => {
    it('pages forwards with <after/> until complete', async () => {
      await conversation(5);
      const p1 = await query(alice, { rsm: { max: 2 } });
      expect(bodiesOf(p1.results)).toEqual(['m0', 'm1']);
      const f1 = finOf(p1.reply);
      expect(f1).toEqual({ complete: 'false', first: idsOf(p1.results)[0], index: 0, last: idsOf(p1.results)[1], count: 5 });
      const p2 = await query(alice, { rsm: { max: 2, after: f1.last } });
      expect(bodiesOf(p2.results)).toEqual(['m2', 'm3']);
      expect(finOf(p2.reply)).toMatchObject({ complete: 'false', index: 2, count: 5 });
      const p3 = await query(alice, { rsm: { max: 2, after: finOf(p2.reply).last } });
      expect(bodiesOf(p3.results)).toEqual(['m4']);
      expect(finOf(p3.reply)).toMatchObject({ complete: 'true', index: 4, count: 5 });
      const p4 = await query(alice, { rsm: { max: 2, after: finOf(p3.reply).last } });
      expect(p4.results).toEqual([]);
      expect(finOf(p4.reply)).toEqual({ complete: 'true', first: undefined, index: undefined, last: undefined, count: 5 });
    });

    it('pages backwards from the last page with <before/>, each page in chronological order', async () => {
      await conversation(5);
      const p1 = await query(alice, { rsm: { max: 2, before: '' } });
      expect(bodiesOf(p1.results)).toEqual(['m3', 'm4']);
      expect(finOf(p1.reply)).toMatchObject({ complete: 'false', index: 3, count: 5 });
      const p2 = await query(alice, { rsm: { max: 2, before: finOf(p1.reply).first } });
      expect(bodiesOf(p2.results)).toEqual(['m1', 'm2']);
      expect(finOf(p2.reply)).toMatchObject({ complete: 'false', index: 1, count: 5 });
      const p3 = await query(alice, { rsm: { max: 2, before: finOf(p2.reply).first } });
      expect(bodiesOf(p3.results)).toEqual(['m0']);
      expect(finOf(p3.reply)).toMatchObject({ complete: 'true', index: 0, count: 5 });
    });

    it('sends a flipped page newest first, with the same page and <fin/>', async () => {
      await conversation(5);
      const plain = await query(alice, { rsm: { max: 3, before: '' } });
      const flipped = await query(alice, { rsm: { max: 3, before: '' }, flip: true });
      expect(bodiesOf(flipped.results)).toEqual(['m4', 'm3', 'm2']);
      expect(finOf(flipped.reply)).toEqual(finOf(plain.reply));
      expect(finOf(flipped.reply).first).toBe(idsOf(flipped.results)[2]);
    });

    it('jumps to a page by <index/>, and answers <max>0</max> with the count alone', async () => {
      await conversation(5);
      const p = await query(alice, { rsm: { max: 2, index: 2 } });
      expect(bodiesOf(p.results)).toEqual(['m2', 'm3']);
      expect(finOf(p.reply)).toMatchObject({ index: 2, complete: 'false', count: 5 });
      const c = await query(alice, { rsm: { max: 0 } });
      expect(c.results).toEqual([]);
      expect(c.reply.getChild('fin', NS_MAM)).toEqual(x('fin', { xmlns: NS_MAM, complete: 'false' }, x('set', { xmlns: NS_RSM }, x('count', null, '5'))));
    });

    it('caps a page at maxPageSize', async () => {
      await host.core.modules.unload('probe');
      await host.core.modules.unload('offline');
      await host.core.modules.unload('mam');
      await host.core.modules.load(mam, { maxPageSize: 3 });
      await conversation(5);
      const p = await query(alice, { rsm: { max: 100 } });
      expect(bodiesOf(p.results)).toEqual(['m0', 'm1', 'm2']);
      expect(finOf(p.reply).complete).toBe('false');
      expect(bodiesOf((await query(alice)).results)).toEqual(['m0', 'm1', 'm2']);
    });

    it('filters by a bare JID (any resource) or a full JID (that resource)', async () => {
      await host.core.createUser(CAROL, 'secret');
      const carolA = await host.connect(`${CAROL}/a`);
      const carolB = await host.connect(`${CAROL}/b`);
      await carolA.receive(chat(`${ALICE}/phone`, 'from a'));
      await carolB.receive(chat(`${ALICE}/phone`, 'from b'));
      await alice.receive(chat(`${CAROL}/a`, 'to a'));
      await bob.receive(chat(`${ALICE}/phone`, 'from bob'));
      alice.take();
      expect(bodiesOf((await query(alice, { fields: { with: CAROL } })).results)).toEqual(['from a', 'from b', 'to a']);
      expect(bodiesOf((await query(alice, { fields: { with: `${CAROL}/a` } })).results)).toEqual(['from a', 'to a']);
      expect(bodiesOf((await query(alice, { fields: { with: BOB } })).results)).toEqual(['from bob']);
      expect(bodiesOf((await query(alice, { fields: { with: 'dave@example.test' } })).results)).toEqual([]);
    });

    it('filters by start and end (inclusive, any time zone, fractions of a second)', async () => {
      await conversation(5); // m0 at T0, m1 at T0 + 1 s, ...
      const at = (s: number) => new Date(T0 + s * 1000).toISOString();
      expect(bodiesOf((await query(alice, { fields: { start: at(1), end: at(3) } })).results)).toEqual(['m1', 'm2', 'm3']);
      expect(bodiesOf((await query(alice, { fields: { start: '2024-01-02T05:04:07.678+02:00' } })).results)).toEqual(['m2', 'm3', 'm4']);
      expect(bodiesOf((await query(alice, { fields: { end: '2024-01-02T03:04:06Z' } })).results)).toEqual(['m0']);
      expect(bodiesOf((await query(alice, { fields: { start: at(10) } })).results)).toEqual([]);
      expect(bodiesOf((await query(alice, { fields: { start: at(3), end: at(1) } })).results)).toEqual([]);
      // Paging inside a time window.
      const p = await query(alice, { fields: { start: at(1) }, rsm: { max: 2, before: '' } });
      expect(bodiesOf(p.results)).toEqual(['m3', 'm4']);
      expect(finOf(p.reply)).toMatchObject({ count: 4, index: 2 });
    });

    it('keeps archive order when the clock goes backwards', async () => {
      await alice.receive(chat(`${BOB}/laptop`, 'first'));
      now -= 60_000;
      await alice.receive(chat(`${BOB}/laptop`, 'second'));
      const { results } = await query(alice);
      expect(bodiesOf(results)).toEqual(['first', 'second']);
      // The second is stamped no earlier than the first.
      expect(results.map((m) => resultOf(m).getChild('forwarded', NS_FORWARD)!.getChild('delay', NS_DELAY)!.attrs.stamp)).toEqual([STAMP0, STAMP0]);
    });

    it('selects by after-id, before-id and ids (#extended)', async () => {
      await conversation(6);
      const all = idsOf((await query(alice)).results);
      expect(bodiesOf((await query(alice, { fields: { 'after-id': all[1]! } })).results)).toEqual(['m2', 'm3', 'm4', 'm5']);
      expect(bodiesOf((await query(alice, { fields: { 'before-id': all[2]! } })).results)).toEqual(['m0', 'm1']);
      const between = await query(alice, { fields: { 'after-id': all[0]!, 'before-id': all[4]! } });
      expect(bodiesOf(between.results)).toEqual(['m1', 'm2', 'm3']);
      expect(finOf(between.reply)).toMatchObject({ count: 3, index: 0 });
      // before-id does not page backwards (unlike RSM <before/>).
      expect(bodiesOf((await query(alice, { fields: { 'before-id': all[5]! }, rsm: { max: 2 } })).results)).toEqual(['m0', 'm1']);
      expect(bodiesOf((await query(alice, { fields: { ids: [all[4]!, all[1]!] } })).results)).toEqual(['m1', 'm4']);
      expect(bodiesOf((await query(alice, { fields: { ids: all[3]!, with: BOB } })).results)).toEqual(['m3']);
    });

    it('answers unknown archive ids with item-not-found (form ids and RSM ids)', async () => {
      await conversation(2);
      const [mine] = idsOf((await query(alice)).results);
      const [bobs] = idsOf((await query(bob)).results);
      const tampered = mine!.slice(0, -1) + (mine!.endsWith('a') ? 'q' : 'a');
      const cases: QueryOpts[] = [
        { fields: { 'after-id': 'nope' } },
        { fields: { 'before-id': bobs! } }, // another archive's id
        { fields: { ids: [mine!, 'nope'] } },
        { rsm: { after: tampered } },
        { rsm: { before: 'nope' } },
      ];
      for (const [i, o] of cases.entries()) {
        const { results, reply } = await query(alice, { ...o, id: `e${i}` });
        expect(results).toEqual([]);
        expect(reply.attrs).toMatchObject({ type: 'error', id: `e${i}` });
        expect(reply.getChild('error')!.attrs.type).toBe('cancel');
        expect(reply.getChild('error')!.getChild('item-not-found', NS_STANZAS)).toBeDefined();
      }
    });

    it('answers bad input with bad-request, unknown fields with feature-not-implemented, bad JIDs with jid-malformed', async () => {
      await conversation(1);
      const cases: [QueryOpts | Element, string][] = [
        [{ fields: { start: 'yesterday' } }, 'bad-request'],
        [{ fields: { start: '2024-02-30T00:00:00Z' } }, 'bad-request'],
        [{ fields: { end: '2024-01-02T25:00:00Z' } }, 'bad-request'],
        [{ fields: { end: '2024-01-02T03:04:05' } }, 'bad-request'], // no time zone
        [{ fields: { with: 'a@b@c' } }, 'jid-malformed'],
        [{ fields: { 'include-groupchat': 'true' } }, 'feature-not-implemented'],
        [{ fields: { with: ALICE }, formType: 'urn:xmpp:mam:1' }, 'bad-request'],
        [{ fields: { with: [ALICE, BOB] } }, 'bad-request'],
        [{ rsm: { max: 'ten' } }, 'bad-request'],
        [{ rsm: { max: -1 } }, 'bad-request'],
        [{ rsm: { after: '' } }, 'bad-request'],
        [{ rsm: { index: 1, before: '' } }, 'bad-request'],
        [x('query', { xmlns: NS_MAM }, x('x', { xmlns: NS_DATA, type: 'form' })), 'bad-request'],
        [x('query', { xmlns: NS_MAM }, x('x', { xmlns: NS_DATA, type: 'submit' }, x('field', null, x('value', null, 'v')))), 'bad-request'],
      ];
      for (const [i, [input, condition]] of cases.entries()) {
        const el = input instanceof Element ? input : queryElement(input);
        await alice.receive(x('iq', { type: 'set', id: `b${i}` }, el));
        const out = alice.take();
        expect(out).toHaveLength(1);
        const error = out[0]!.getChild('error')!;
        expect([i, out[0]!.attrs.type, error.getChild(condition, NS_STANZAS) !== undefined]).toEqual([i, 'error', true]);
      }
    });

    it('answers a form request with the supported fields (XEP-0313 §4.1.5)', async () => {
      await alice.receive(x('iq', { type: 'get', id: 'form1' }, x('query', { xmlns: NS_MAM })));
      const [reply] = alice.take();
      const form = reply!.getChild('query', NS_MAM)!.getChild('x', NS_DATA)!;
      expect(form.attrs.type).toBe('form');
      expect(form.getChildren('field').map((f) => [f.attrs.var, f.attrs.type])).toEqual([
        ['FORM_TYPE', 'hidden'], ['with', 'jid-single'], ['start', 'text-single'], ['end', 'text-single'],
        ['before-id', 'text-single'], ['after-id', 'text-single'], ['ids', 'list-multi'],
        [FULLTEXT_FIELD, 'text-single'], [WITHTEXT_FIELD, 'text-single'],
      ]);
      expect(form.getChildren('field')[0]!.getChildText('value')).toBe(NS_MAM);
      expect(form.getChildren('field').some((f) => f.getChild('required') !== undefined)).toBe(false);
      expect(form.getChildren('field')[6]!.getChild('validate', 'http://jabber.org/protocol/xdata-validate')).toEqual(
        x('validate', { xmlns: 'http://jabber.org/protocol/xdata-validate', datatype: 'xs:string' }, x('open')));
    });

    it('refuses queries of another account\'s archive with forbidden', async () => {
      await conversation(2);
      const q = await query(alice, { to: BOB, id: 'x1' });
      expect(q.results).toEqual([]);
      expect(q.reply).toEqual(iqError('x1', `${ALICE}/phone`, 'forbidden', 'auth', "Only the account itself can use its archive", BOB));
      await alice.receive(x('iq', { type: 'get', id: 'x2', to: BOB }, x('metadata', { xmlns: NS_MAM })));
      expect(alice.take()[0]!.getChild('error')!.getChild('forbidden', NS_STANZAS)).toBeDefined();
      await alice.receive(x('iq', { type: 'set', id: 'x3', to: BOB }, x('prefs', { xmlns: NS_MAM, default: 'never' })));
      expect(alice.take()[0]!.getChild('error')!.getChild('forbidden', NS_STANZAS)).toBeDefined();
    });

    it('answers to the own bare JID as to no address', async () => {
      await conversation(2);
      const q = await query(alice, { to: ALICE, id: 'own' });
      expect(bodiesOf(q.results)).toEqual(['m0', 'm1']);
      expect(q.reply.attrs).toEqual({ type: 'result', id: 'own', to: `${ALICE}/phone`, from: ALICE });
    });
  });

  describe('full-text search (XEP-0431)', () => {
    beforeEach(async () => {
      const lines = ['Call me but love', 'and I will be new baptized', 'Henceforth I never will be Romeo', 'Où est la bibliothèque?', "Don't call me later"];
      for (const line of lines) {
        await alice.receive(chat(`${BOB}/laptop`, line));
        now += 1000;
      }
      await bob.receive(chat(`${ALICE}/phone`, 'call me maybe'));
      alice.take();
      bob.take();
    });

    it('finds messages with all the words, in either field, ignoring case and accents', async () => {
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'call' } })).results))
        .toEqual(['Call me but love', "Don't call me later", 'call me maybe']);
      expect(bodiesOf((await query(alice, { fields: { [WITHTEXT_FIELD]: 'WILL be' } })).results))
        .toEqual(['and I will be new baptized', 'Henceforth I never will be Romeo']);
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'bibliotheque' } })).results)).toEqual(['Où est la bibliothèque?']);
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: "don't" } })).results)).toEqual(["Don't call me later"]);
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'bapt*' } })).results)).toEqual(['and I will be new baptized']);
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'juliet' } })).results)).toEqual([]);
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: '?!' } })).results)).toEqual([]);
    });

    it('searches only the own archive, combines with other filters, and pages', async () => {
      expect(bodiesOf((await query(bob, { fields: { [FULLTEXT_FIELD]: 'romeo' } })).results)).toEqual(['Henceforth I never will be Romeo']);
      await host.core.createUser(CAROL, 'secret');
      const carol = await host.connect(`${CAROL}/x`);
      expect(bodiesOf((await query(carol, { fields: { [FULLTEXT_FIELD]: 'romeo' } })).results)).toEqual([]);
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'call', with: BOB, end: new Date(T0 + 4500).toISOString() } })).results))
        .toEqual(['Call me but love', "Don't call me later"]);
      const last = await query(alice, { fields: { [FULLTEXT_FIELD]: 'me' }, rsm: { max: 2, before: '' } });
      expect(bodiesOf(last.results)).toEqual(["Don't call me later", 'call me maybe']);
      expect(finOf(last.reply)).toMatchObject({ complete: 'false', count: 3, index: 1 });
      const prev = await query(alice, { fields: { [FULLTEXT_FIELD]: 'me' }, rsm: { max: 2, before: finOf(last.reply).first } });
      expect(bodiesOf(prev.results)).toEqual(['Call me but love']);
      expect(finOf(prev.reply)).toMatchObject({ complete: 'true', index: 0 });
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'me', start: new Date(T0 + 2000).toISOString() } })).results))
        .toEqual(["Don't call me later", 'call me maybe']);
    });

    it('indexes an archive when it is first searched, then what arrived since at each search', async () => {
      const postings = () => host.core.db.prepare('SELECT count(*) FROM mam_fts').pluck().get();
      expect(postings()).toBe(0); // archiving does not index words
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'call' } })).results)).toHaveLength(3);
      expect(postings()).toBe(6); // alice's archive only
      await alice.receive(chat(`${BOB}/laptop`, 'call again'));
      alice.take();
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'again' } })).results)).toEqual(['call again']);
      expect(postings()).toBe(7);
      // A large archive is indexed in steps, all of it before the search answers.
      const archive = grabbed.archive!;
      for (let i = 0; i < 4500; i++) await archive.append(ALICE, { with: CAROL, stanza: chat(CAROL, `bulk ${i}`), direction: 'out' });
      const found = await query(alice, { fields: { [FULLTEXT_FIELD]: 'bulk' }, rsm: { max: 2, before: '' } });
      expect(bodiesOf(found.results)).toEqual(['bulk 4498', 'bulk 4499']);
      expect(finOf(found.reply)).toMatchObject({ count: 4500 });
      expect(postings()).toBe(4507);
    });

    it('rejects two search fields at once', async () => {
      const q = await query(alice, { fields: { [FULLTEXT_FIELD]: 'a', [WITHTEXT_FIELD]: 'b' } });
      expect(q.reply.getChild('error')!.getChild('bad-request', NS_STANZAS)).toBeDefined();
    });
  });

  describe('metadata (#extended)', () => {
    it('gives the first and last message, or an empty element for an empty archive', async () => {
      await alice.receive(x('iq', { type: 'get', id: 'md0' }, x('metadata', { xmlns: NS_MAM })));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'md0', to: `${ALICE}/phone` }, x('metadata', { xmlns: NS_MAM }))]);
      await conversation(3);
      const ids = idsOf((await query(alice)).results);
      await alice.receive(x('iq', { type: 'get', id: 'md1' }, x('metadata', { xmlns: NS_MAM })));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'md1', to: `${ALICE}/phone` }, x('metadata', { xmlns: NS_MAM },
        x('start', { id: ids[0], timestamp: STAMP0 }),
        x('end', { id: ids[2], timestamp: '2024-01-02T03:04:07.678Z' })))]);
    });
  });

  describe('preferences (XEP-0441)', () => {
    const prefs = (mode: string, always: string[] = [], never: string[] = []) =>
      x('prefs', { xmlns: NS_MAM, default: mode }, x('always', null, always.map((j) => x('jid', null, j))), x('never', null, never.map((j) => x('jid', null, j))));

    it('starts with default always and empty lists, and stores what is set', async () => {
      await alice.receive(x('iq', { type: 'get', id: 'p1' }, x('prefs', { xmlns: NS_MAM })));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'p1', to: `${ALICE}/phone` }, prefs('always'))]);
      await alice.receive(x('iq', { type: 'set', id: 'p2' }, prefs('roster', ['romeo@montague.lit'], ['montague@montague.lit', 'romeo@montague.lit/orchard'])));
      const applied = prefs('roster', ['romeo@montague.lit'], ['montague@montague.lit', 'romeo@montague.lit/orchard']);
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'p2', to: `${ALICE}/phone` }, applied)]);
      await alice.receive(x('iq', { type: 'get', id: 'p3' }, x('prefs', { xmlns: NS_MAM })));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'p3', to: `${ALICE}/phone` }, applied)]);
      // Missing lists are empty lists.
      await alice.receive(x('iq', { type: 'set', id: 'p4' }, x('prefs', { xmlns: NS_MAM, default: 'never' })));
      expect(alice.take()).toEqual([x('iq', { type: 'result', id: 'p4', to: `${ALICE}/phone` }, prefs('never'))]);
    });

    it('never archives JIDs on the never list, in either direction, and only for that account', async () => {
      await alice.receive(x('iq', { type: 'set', id: 'p' }, prefs('always', [], [BOB])));
      alice.take();
      await alice.receive(chat(`${BOB}/laptop`, 'secret out'));
      await bob.receive(chat(`${ALICE}/phone`, 'secret in'));
      const [got] = alice.take();
      expect(got!.getChild('stanza-id', NS_SID)).toBeUndefined(); // not archived: no archive id
      expect(bodiesOf((await query(alice)).results)).toEqual([]);
      expect(bodiesOf((await query(bob)).results)).toEqual(['secret out', 'secret in']);
    });

    it('matches a listed full JID only for that resource', async () => {
      await host.core.createUser(CAROL, 'secret');
      const carolA = await host.connect(`${CAROL}/a`);
      const carolB = await host.connect(`${CAROL}/b`);
      await alice.receive(x('iq', { type: 'set', id: 'p' }, prefs('always', [], [`${CAROL}/a`])));
      await carolA.receive(chat(`${ALICE}/phone`, 'from a'));
      await carolB.receive(chat(`${ALICE}/phone`, 'from b'));
      await alice.receive(chat(CAROL, 'to the bare JID'));
      await alice.receive(chat(`${CAROL}/a`, 'to a'));
      expect(bodiesOf((await query(alice)).results)).toEqual(['from b', 'to the bare JID']);
    });

    it('with default never, archives only the always list', async () => {
      await alice.receive(x('iq', { type: 'set', id: 'p' }, prefs('never', [BOB])));
      await host.core.createUser(CAROL, 'secret');
      const carol = await host.connect(`${CAROL}/x`);
      await carol.receive(chat(`${ALICE}/phone`, 'carol'));
      await bob.receive(chat(`${ALICE}/phone`, 'bob'));
      expect(bodiesOf((await query(alice)).results)).toEqual(['bob']);
    });

    it('with default roster, archives contacts in the roster only', async () => {
      await alice.receive(x('iq', { type: 'set', id: 'p' }, prefs('roster')));
      await alice.receive(x('iq', { type: 'set', id: 'r' }, x('query', { xmlns: 'jabber:iq:roster' }, x('item', { jid: BOB }))));
      await host.core.createUser(CAROL, 'secret');
      const carol = await host.connect(`${CAROL}/x`);
      await carol.receive(chat(`${ALICE}/phone`, 'stranger'));
      await bob.receive(chat(`${ALICE}/phone`, 'contact'));
      await alice.receive(chat(CAROL, 'to stranger'));
      expect(bodiesOf((await query(alice)).results)).toEqual(['contact']);
    });

    it('rejects bad preferences', async () => {
      const cases: [Element, string][] = [
        [x('prefs', { xmlns: NS_MAM, default: 'sometimes' }), 'bad-request'],
        [x('prefs', { xmlns: NS_MAM }), 'bad-request'],
        [x('prefs', { xmlns: NS_MAM, default: 'always' }, x('always', null, x('jid', null, 'a@b@c'))), 'jid-malformed'],
        [x('prefs', { xmlns: NS_MAM, default: 'always' }, x('never', null, x('item', null, BOB))), 'bad-request'],
        [x('prefs', { xmlns: NS_MAM, default: 'always' }, x('never', null, Array.from({ length: 1001 }, (_, i) => x('jid', null, `u${i}@x.test`)))), 'policy-violation'],
      ];
      for (const [i, [el, condition]] of cases.entries()) {
        await alice.receive(x('iq', { type: 'set', id: `bp${i}` }, el));
        const [reply] = alice.take();
        expect([i, reply!.attrs.type, reply!.getChild('error')!.getChild(condition, NS_STANZAS) !== undefined]).toEqual([i, 'error', true]);
      }
      await alice.receive(x('iq', { type: 'get', id: 'g' }, x('prefs', { xmlns: NS_MAM })));
      expect(alice.take()[0]!.getChild('prefs', NS_MAM)!.attrs.default).toBe('always'); // unchanged
    });
  });

  describe('the archive service (room archives)', () => {
    it('stores and queries an archive for any owner, sending results to the requester', async () => {
      const archive = grabbed.archive!;
      const room = 'coven@chat.example.test';
      const m1 = x('message', { from: `${room}/firstwitch`, type: 'groupchat', id: 'g1' }, x('body', null, "Thrice the brinded cat hath mew'd."));
      const m2 = x('message', { from: `${room}/secondwitch`, type: 'groupchat', id: 'g2' }, x('body', null, 'Thrice and once the hedge-pig whined.'));
      const id1 = await archive.append(room, { with: `${room}/firstwitch`, stanza: m1, direction: 'in', at: T0 - 60_000 });
      const id2 = await archive.append(room, { with: `${room}/secondwitch`, stanza: m2, direction: 'in' });
      expect(id1).not.toBe(id2);

      const fin = await archive.query(room, queryElement({ queryid: 'g27', rsm: { max: 10 } }), Jid.parse(`${ALICE}/phone`));
      const results = alice.take();
      expect(results).toEqual([
        x('message', { from: room, to: `${ALICE}/phone`, id: results[0]!.attrs.id },
          x('result', { xmlns: NS_MAM, queryid: 'g27', id: id1 },
            x('forwarded', { xmlns: NS_FORWARD }, x('delay', { xmlns: NS_DELAY, stamp: '2024-01-02T03:03:05.678Z' }), m1.withAttrs({ xmlns: NS_CLIENT })))),
        x('message', { from: room, to: `${ALICE}/phone`, id: results[1]!.attrs.id },
          x('result', { xmlns: NS_MAM, queryid: 'g27', id: id2 },
            x('forwarded', { xmlns: NS_FORWARD }, x('delay', { xmlns: NS_DELAY, stamp: STAMP0 }), m2.withAttrs({ xmlns: NS_CLIENT })))),
      ]);
      expect(fin).toEqual(x('fin', { xmlns: NS_MAM, complete: 'true' },
        x('set', { xmlns: NS_RSM }, x('first', { index: '0' }, id1), x('last', null, id2), x('count', null, '2'))));

      // Filtering by occupant, and the room archive is separate from the accounts'.
      await archive.query(room, queryElement({ fields: { with: `${room}/secondwitch` } }), Jid.parse(`${BOB}/laptop`));
      expect(bodiesOf(bob.take())).toEqual(['Thrice and once the hedge-pig whined.']);
      // Full text in a room archive: indexed at its first search, like an account's.
      await archive.query(room, queryElement({ fields: { [FULLTEXT_FIELD]: 'hedge-pig' } }), Jid.parse(`${BOB}/laptop`));
      expect(bodiesOf(bob.take())).toEqual(['Thrice and once the hedge-pig whined.']);
      expect((await query(alice)).results).toEqual([]);
      await expect(archive.query(room, queryElement({ fields: { start: 'soon' } }), Jid.parse(`${ALICE}/phone`)))
        .rejects.toMatchObject({ name: 'StanzaError', condition: 'bad-request' });
      await expect(archive.query(room, queryElement({ rsm: { after: 'nope' } }), Jid.parse(`${ALICE}/phone`)))
        .rejects.toMatchObject({ name: 'StanzaError', condition: 'item-not-found' });
      // A requester whose session is gone gets nothing (and nothing goes to its other resources).
      const fin2 = await archive.query(room, queryElement(), Jid.parse(`${ALICE}/gone`));
      expect(finOf(x('iq', { type: 'result' }, fin2)).count).toBe(2);
      expect(alice.take()).toEqual([]);
    });

    it('keeps an older timestamp given for a room message from going before archived ones', async () => {
      const archive = grabbed.archive!;
      const room = 'room@chat.example.test';
      await archive.append(room, { with: `${room}/a`, stanza: chat(room, 'one'), direction: 'in' });
      await archive.append(room, { with: `${room}/a`, stanza: chat(room, 'two'), direction: 'in', at: T0 - 3_600_000 });
      await archive.query(room, queryElement(), Jid.parse(`${ALICE}/phone`));
      const results = alice.take();
      expect(bodiesOf(results)).toEqual(['one', 'two']);
    });
  });

  describe('lifecycle', () => {
    it('advertises mam:2, #extended, stanza-ids and full-text search on accounts, and stanza-ids on the server', async () => {
      await alice.receive(x('iq', { type: 'get', id: 'd1', to: ALICE }, x('query', { xmlns: NS_DISCO_INFO })));
      const features = alice.take()[0]!.getChild('query', NS_DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
      expect(features).toEqual(expect.arrayContaining([NS_MAM, NS_MAM_EXTENDED, NS_SID, NS_FULLTEXT]));
      await alice.receive(x('iq', { type: 'get', id: 'd2', to: D }, x('query', { xmlns: NS_DISCO_INFO })));
      const serverFeatures = alice.take()[0]!.getChild('query', NS_DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
      expect(serverFeatures).toContain(NS_SID);
      expect(serverFeatures).not.toContain(NS_MAM);

      // Unloading removes the account features and the answers.
      await host.core.modules.unload('probe');
      await host.core.modules.unload('offline');
      await host.core.modules.unload('mam');
      await alice.receive(x('iq', { type: 'get', id: 'd3', to: ALICE }, x('query', { xmlns: NS_DISCO_INFO })));
      const after = alice.take()[0]!.getChild('query', NS_DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
      expect(after).not.toContain(NS_MAM);
      await alice.receive(x('iq', { type: 'set', id: 'q' }, x('query', { xmlns: NS_MAM })));
      expect(alice.take()[0]!.getChild('error')!.getChild('service-unavailable', NS_STANZAS)).toBeDefined();
      await alice.receive(chat(`${BOB}/laptop`, 'unarchived'));
      expect(bob.take()[0]!.getChild('stanza-id', NS_SID)).toBeUndefined();
    });

    it('keeps archives and preferences across unload and load, writing what was queued', async () => {
      await alice.receive(x('iq', { type: 'set', id: 'p' }, x('prefs', { xmlns: NS_MAM, default: 'always' }, x('never', null, x('jid', null, CAROL)))));
      const archive = grabbed.archive!;
      const queued = await archive.append(ALICE, { with: BOB, stanza: chat(BOB, 'queued'), direction: 'out' });
      await host.core.modules.unload('probe'); // same turn: the batch is still queued
      await host.core.modules.unload('offline');
      await host.core.modules.unload('mam');
      expect(host.core.db.prepare('SELECT count(*) FROM mam_row').pluck().get()).toBe(1);
      await host.core.modules.load(mam);
      const { results } = await query(alice);
      expect(idsOf(results)).toEqual([queued]);
      await alice.receive(x('iq', { type: 'get', id: 'g' }, x('prefs', { xmlns: NS_MAM })));
      expect(alice.take()[0]!.getChild('prefs', NS_MAM)!.getChild('never')!.getChildText('jid')).toBe(CAROL);
    });

    it('deletes an account\'s archive and preferences with the account', async () => {
      await conversation(3);
      // Searches index both archives' words first.
      expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'm1' } })).results)).toEqual(['m1']);
      expect(bodiesOf((await query(bob, { fields: { [FULLTEXT_FIELD]: 'm2' } })).results)).toEqual(['m2']);
      expect(host.core.db.prepare('SELECT count(*) FROM mam_fts').pluck().get()).toBe(6);
      await alice.receive(x('iq', { type: 'set', id: 'p' }, x('prefs', { xmlns: NS_MAM, default: 'never' })));
      await host.core.deleteUser(ALICE);
      const count = (sql: string) => host.core.db.prepare(sql).pluck().get();
      expect(count(`SELECT count(*) FROM mam_row m JOIN mam_jid j ON (j.id = m.from_id AND m.from_nonce IS NOT NULL) OR (j.id = m.to_id AND m.to_nonce IS NOT NULL) WHERE j.jid = '${ALICE}'`)).toBe(0);
      expect(count(`SELECT count(*) FROM mam_prefs WHERE owner = '${ALICE}'`)).toBe(0);
      expect(count(`SELECT count(*) FROM mam_row m JOIN mam_jid j ON (j.id = m.from_id AND m.from_nonce IS NOT NULL) OR (j.id = m.to_id AND m.to_nonce IS NOT NULL) WHERE j.jid = '${BOB}'`)).toBe(3);
      // Each message was one row for both archives: it stays, for bob's alone.
      expect(count('SELECT count(*) FROM mam_row')).toBe(3);
      const again = await host.connect(`${ALICE}/new`);
      expect((await query(again)).results).toEqual([]);
      // The FTS rows went too: a search finds bob's copies only.
      expect(count("SELECT count(*) FROM mam_fts")).toBe(3);
      await again.receive(x('iq', { type: 'get', id: 'g' }, x('prefs', { xmlns: NS_MAM })));
      expect(again.take()[0]!.getChild('prefs', NS_MAM)!.attrs.default).toBe('always');
    });

    it('rejects bad options', async () => {
      await host.core.modules.unload('probe');
      await host.core.modules.unload('offline');
      await host.core.modules.unload('mam');
      await expect(host.core.modules.load(mam, { expireDays: 0 })).rejects.toThrow(/mam.*expireDays/);
      await expect(host.core.modules.load(mam, { expireDays: 'soon' })).rejects.toThrow(/mam.*expireDays/);
      await expect(host.core.modules.load(mam, { maxPageSize: 0 })).rejects.toThrow(/mam.*maxPageSize/);
      await expect(host.core.modules.load(mam, { keepForever: true })).rejects.toThrow(/keepForever/);
    });
  });

  describe('archive ids and dates', () => {
    it('encrypts sequence and nonce reversibly into 26 base32 characters that reveal neither', () => {
      const codec = new IdCodec(Buffer.alloc(16, 7));
      const ids = [[1, 0], [2, 0], [123456789, 2 ** 48 - 1], [2 ** 48 - 1, 42]].map(([seq, nonce]) => {
        const id = codec.encode(seq!, nonce!);
        expect(id).toMatch(/^[a-z2-7]{26}$/);
        expect(codec.decode(id)).toEqual({ seq, nonce });
        return id;
      });
      // Consecutive sequence numbers give unrelated ids: nothing to read the archive's size from.
      expect(ids[0]!.slice(0, 4)).not.toBe(ids[1]!.slice(0, 4));
      expect(new IdCodec(Buffer.alloc(16, 8)).decode(ids[0]!)).toBeUndefined(); // another server's key
      expect(codec.decode('')).toBeUndefined();
      expect(codec.decode('A'.repeat(26))).toBeUndefined();
      expect(codec.decode(ids[0]!.slice(0, 25) + '7')).toBeUndefined(); // non-zero padding bits
      expect(codec.decode('a'.repeat(26))).toBeUndefined(); // decrypts to something we never made
    });

    it('parses XEP-0082 DateTimes', () => {
      expect(parseDateTime('2010-07-10T23:08:25Z', 'start')).toBe(Date.UTC(2010, 6, 10, 23, 8, 25));
      expect(parseDateTime('2010-07-10T23:08:25.123456Z', 'start')).toBe(Date.UTC(2010, 6, 10, 23, 8, 25, 123));
      expect(parseDateTime('2010-07-10T23:08:25-05:30', 'start')).toBe(Date.UTC(2010, 6, 11, 4, 38, 25));
      expect(parseDateTime('0050-01-01T00:00:00Z', 'start')).toBe(new Date('0050-01-01T00:00:00Z').getTime());
      for (const bad of ['2010-07-10', '2010-07-10T23:08Z', '2010-13-10T00:00:00Z', '2010-07-10T23:08:60Z', '2010-07-10T23:08:25+24:00', ' 2010-07-10T23:08:25Z']) {
        expect(() => parseDateTime(bad, 'start')).toThrow(/XEP-0082/);
      }
    });
  });
});

describe('mam retention', () => {
  let host: TestHost;
  const grabbed: { archive?: ArchiveService } = {};
  beforeEach(async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask'], now: T0 });
    host = await createTestHost({ modules: [mam, probe(grabbed)], options: { mam: { expireDays: 2 } } });
  });
  afterEach(async () => {
    await host.close();
    jest.useRealTimers();
  });

  it('deletes messages older than expireDays in the background, oldest first, in every archive', async () => {
    const archive = grabbed.archive!;
    const day = 86_400_000;
    for (let d = 0; d < 4; d++) {
      await archive.append(ALICE, { with: BOB, stanza: chat(BOB, `alice day ${d}`), direction: 'out', at: T0 + d * day });
      await archive.append(BOB, { with: ALICE, stanza: chat(BOB, `bob day ${d}`), direction: 'in', at: T0 + d * day });
    }
    const alice = await host.connect(`${ALICE}/phone`);
    const bob = await host.connect(`${BOB}/laptop`);
    // Searches index both archives' words, so that expiry has postings to delete too.
    expect(bodiesOf((await query(alice, { fields: { [FULLTEXT_FIELD]: 'day' } })).results)).toHaveLength(4);
    expect(bodiesOf((await query(bob, { fields: { [FULLTEXT_FIELD]: 'day' } })).results)).toHaveLength(4);
    expect(host.core.db.prepare('SELECT count(*) FROM mam_fts').pluck().get()).toBe(8);
    jest.setSystemTime(T0 + 3 * day + 1000); // day 0 is 3 days old, day 1 just over 2
    await jest.advanceTimersByTimeAsync(60_000);
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    expect(bodiesOf((await query(alice)).results)).toEqual(['alice day 2', 'alice day 3']);
    expect(bodiesOf((await query(bob)).results)).toEqual(['bob day 2', 'bob day 3']);
    expect(host.core.db.prepare('SELECT count(*) FROM mam_fts').pluck().get()).toBe(4);
  });
});

describe('mam file database', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xmppd-mam-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('survives a restart, never reuses an id, and never hands out an id of a deleted archive', async () => {
    const database = join(dir, 'xmppd.sqlite');
    const grabbed: { archive?: ArchiveService } = {};
    const first = await createTestHost({ modules: [mam, probe(grabbed)], database });
    const a1 = await grabbed.archive!.append(ALICE, { with: BOB, stanza: chat(BOB, 'one'), direction: 'out' });
    const b1 = await grabbed.archive!.append(BOB, { with: ALICE, stanza: chat(BOB, 'newest'), direction: 'in' });
    await first.close(); // still queued: written on close
    // bob's rows go; his sequence numbers must still not come back.
    const second = await createTestHost({ modules: [mam, probe(grabbed)], database });
    await second.core.createUser(BOB, 'secret');
    await second.core.deleteUser(BOB);
    const a2 = await grabbed.archive!.append(ALICE, { with: BOB, stanza: chat(BOB, 'two'), direction: 'out' });
    // The archive of a server database in a file is a file beside it (worker-store.ts).
    const archiveDb = openDatabase(archiveFileFor(database));
    const codec = new IdCodec(archiveDb.prepare('SELECT key FROM mam_key').pluck().get() as Buffer);
    archiveDb.close();
    expect(codec.decode(a2)!.seq).toBeGreaterThan(codec.decode(b1)!.seq);
    const alice = await second.connect(`${ALICE}/phone`);
    const { results } = await query(alice);
    expect(idsOf(results)).toEqual([a1, a2]);
    await second.close();
  });

  it('holds appends back while the archive is far behind, then writes every message', async () => {
    const grabbed: { archive?: ArchiveService } = {};
    const host = await createTestHost({ modules: [mam, probe(grabbed)], database: join(dir, 'xmppd.sqlite') });
    try {
      // Appended without yielding, so the archive's thread reports nothing written meanwhile.
      const ids: (string | Promise<string>)[] = [];
      const total = MAX_BACKLOG + 5_000;
      for (let i = 0; i < total; i++) ids.push(grabbed.archive!.append(ALICE, { with: BOB, stanza: chat(BOB, `m${i}`), direction: 'out' }));
      const held = ids.filter((id) => typeof id !== 'string').length;
      expect(held).toBe(5_000); // past MAX_BACKLOG waiting to be written
      const all = await Promise.all(ids);
      expect(new Set(all).size).toBe(total);
      const alice = await host.connect(`${ALICE}/phone`);
      expect(bodiesOf((await query(alice, { rsm: { max: 3, before: '' } })).results)).toEqual([`m${total - 3}`, `m${total - 2}`, `m${total - 1}`]);
      const { results, reply } = await query(alice, { rsm: { max: 2 } });
      expect(bodiesOf(results)).toEqual(['m0', 'm1']);
      expect(finOf(reply).last).toBe(all[1]);
    } finally {
      await host.close();
    }
  });
});

describe('mam at 100k messages', () => {
  let host: TestHost;
  const grabbed: { archive?: ArchiveService } = {};
  const N = 100_000;
  let ids: string[];
  let reader: FakeSession;

  beforeAll(async () => {
    host = await createTestHost({ modules: [mam, probe(grabbed)] });
    const archive = grabbed.archive!;
    ids = [];
    const base = Date.UTC(2024, 0, 1);
    for (let i = 0; i < N; i++) {
      const peer = `friend${i % 7}@example.test/r${i % 2}`;
      const id = await archive.append(ALICE, {
        with: peer, stanza: x('message', { from: peer, to: ALICE, type: 'chat', id: `m${i}` }, x('body', null, `message number${i}`)),
        direction: 'in', at: base + i * 1000,
      });
      ids.push(id);
      // Other archives in between, as on a real server.
      if (i % 10 === 0) await archive.append(BOB, { with: ALICE, stanza: chat(BOB, `number${i}`), direction: 'in', at: base + i * 1000 });
    }
    reader = await host.connect(`${ALICE}/reader`);
  }, 120_000);
  afterAll(() => host.close());

  const bodyIndexes = (results: Element[]) => bodiesOf(results).map((b) => Number(b!.slice('message number'.length)));
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('pages through the whole archive forwards, every message once and in order', async () => {
    let after: string | undefined;
    let seen = 0;
    for (;;) {
      const { results, reply } = await query(reader, { rsm: { max: 250, after } });
      const fin = finOf(reply);
      expect(bodyIndexes(results)).toEqual(range(seen, seen + results.length));
      expect(idsOf(results)).toEqual(ids.slice(seen, seen + results.length));
      if (results.length > 0) expect(fin.index === undefined || fin.index === seen).toBe(true);
      seen += results.length;
      if (fin.complete === 'true') break;
      after = fin.last;
    }
    expect(seen).toBe(N);
  }, 120_000);

  it('pages backwards from the end and from the middle', async () => {
    const last = await query(reader, { rsm: { max: 50, before: '' } });
    expect(bodyIndexes(last.results)).toEqual(range(N - 50, N));
    expect(finOf(last.reply).count).toBeUndefined(); // over the count cap: left out
    const mid = await query(reader, { rsm: { max: 50, before: ids[50_000] } });
    expect(bodyIndexes(mid.results)).toEqual(range(49_950, 50_000));
    expect(finOf(mid.reply).complete).toBe('false');
    const start = await query(reader, { rsm: { max: 50, before: ids[30] } });
    expect(bodyIndexes(start.results)).toEqual(range(0, 30));
    expect(finOf(start.reply)).toMatchObject({ complete: 'true', index: 0 });
  });

  it('filters by JID, time, ids and text at this size', async () => {
    const base = Date.UTC(2024, 0, 1);
    const w = await query(reader, { fields: { with: 'friend3@example.test/r1' }, rsm: { max: 5, before: '' } });
    // i % 7 === 3 and i % 2 === 1: i % 14 === 3; the last five below N.
    const expected = range(0, N).filter((i) => i % 14 === 3).slice(-5);
    expect(bodyIndexes(w.results)).toEqual(expected);
    const t = await query(reader, { fields: { start: new Date(base + 70_000_000).toISOString(), end: new Date(base + 70_004_000).toISOString() } });
    expect(bodyIndexes(t.results)).toEqual(range(70_000, 70_005));
    expect(finOf(t.reply).count).toBe(5);
    const between = await query(reader, { fields: { 'after-id': ids[90_000]!, 'before-id': ids[90_004]! } });
    expect(bodyIndexes(between.results)).toEqual([90_001, 90_002, 90_003]);
    const some = await query(reader, { fields: { ids: [ids[99_999]!, ids[7]!, ids[12_345]!] } });
    expect(bodyIndexes(some.results)).toEqual([7, 12_345, 99_999]);
    const text = await query(reader, { fields: { [FULLTEXT_FIELD]: 'number77777' } });
    expect(bodyIndexes(text.results)).toEqual([77_777]);
    const prefix = await query(reader, { fields: { [FULLTEXT_FIELD]: 'number9999*' }, rsm: { max: 3, before: '' } });
    expect(bodyIndexes(prefix.results)).toEqual([99_997, 99_998, 99_999]);
    const bobs = await query(await host.connect(`${BOB}/b`), { fields: { [FULLTEXT_FIELD]: 'number77770' } });
    expect(bodiesOf(bobs.results)).toEqual(['number77770']);
  });
});
