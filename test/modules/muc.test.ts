import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestHost, type FakeSession, type TestHost } from '../helpers/test-host';
import { defineModule, Element, Jid, StanzaError, UserError, x, NS_STANZAS, type XmppModule } from '../../src';
import roster from '../../modules/roster';
import presence from '../../modules/presence';
import disco, { NS_DISCO_INFO, NS_DISCO_ITEMS } from '../../modules/disco';
import muc, {
  NS_DATA, NS_DELAY, NS_MAM, NS_MUC, NS_MUC_ADMIN, NS_MUC_OWNER, NS_MUC_REQUEST, NS_MUC_UNIQUE, NS_MUC_USER, NS_PING, NS_SID,
  type MucService,
} from '../../modules/muc';
import { parseHistoryRequest, selectHistory, historyEntry } from '../../modules/muc/history';

const SVC = 'conference.example.test';
const ROOM = `coven@${SVC}`;
const A = 'alice@example.test/phone';
const B = 'bob@example.test/pc';
const C = 'carol@example.test/tab';
const occ = (nick: string, room = ROOM) => `${room}/${nick}`;

// ---- stanza builders --------------------------------------------------------

/** Drops the ids the room generates (muc-…), which a test cannot know. */
function norm(els: Element[]): Element[] {
  return els.map((el) => (el.attrs.id?.startsWith('muc-') ? el.withAttrs({ id: undefined }) : el));
}

const status = (...codes: number[]) => codes.map((code) => x('status', { code: String(code) }));

interface PresenceOpts {
  type?: string;
  id?: string;
  payload?: Element[];
  itemChildren?: Element[];
  extra?: Element[];
}
function mp(from: string, to: string, item: Record<string, string | undefined>, codes: number[] = [], o: PresenceOpts = {}): Element {
  return x('presence', { from, to, type: o.type, id: o.id }, o.payload ?? [],
    x('x', { xmlns: NS_MUC_USER }, x('item', item, o.itemChildren ?? []), o.extra ?? [], status(...codes)));
}

const subjectMsg = (to: string, text = '', from = ROOM) => x('message', { from, to, type: 'groupchat' }, x('subject', null, text));
const groupchat = (body: string, id?: string, to = ROOM) => x('message', { to, type: 'groupchat', id }, x('body', null, body));
const joinPresence = (nick: string, o: { id?: string; password?: string; history?: Record<string, string>; room?: string } = {}) =>
  x('presence', { to: occ(nick, o.room), id: o.id }, x('x', { xmlns: NS_MUC },
    o.password !== undefined ? x('password', null, o.password) : undefined,
    o.history ? x('history', o.history) : undefined));
const submit = (fields: Record<string, string | string[]> = {}) => x('x', { xmlns: NS_DATA, type: 'submit' },
  Object.keys(fields).length > 0 ? x('field', { var: 'FORM_TYPE' }, x('value', null, 'http://jabber.org/protocol/muc#roomconfig')) : undefined,
  Object.entries(fields).map(([v, vals]) => x('field', { var: v }, (Array.isArray(vals) ? vals : [vals]).map((s) => x('value', null, s)))));
const ownerSet = (id: string, child: Element, room = ROOM) => x('iq', { type: 'set', id, to: room }, x('query', { xmlns: NS_MUC_OWNER }, child));
const adminSet = (id: string, ...items: Element[]) => x('iq', { type: 'set', id, to: ROOM }, x('query', { xmlns: NS_MUC_ADMIN }, items));
const adminGet = (id: string, attrs: Record<string, string>) => x('iq', { type: 'get', id, to: ROOM }, x('query', { xmlns: NS_MUC_ADMIN }, x('item', attrs)));
const result = (id: string, to: string, from = ROOM, payload?: Element) => x('iq', { type: 'result', id, from, to }, payload);
const discoInfo = (id: string, to = ROOM, node?: string) => x('iq', { type: 'get', id, to }, x('query', { xmlns: NS_DISCO_INFO, node }));

function stanzaError(condition: string, type: string, text?: string, by = ROOM): Element {
  return x('error', { type, by }, x(condition, { xmlns: NS_STANZAS }),
    text !== undefined ? x('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text) : undefined);
}

/** The condition and type of the only error stanza among `els`. */
function errorOf(els: Element[]): { name: string; from?: string; id?: string; condition?: string; type?: string } {
  const errs = els.filter((e) => e.attrs.type === 'error');
  expect(errs).toHaveLength(1);
  const e = errs[0]!;
  const error = e.getChild('error')!;
  return { name: e.name, from: e.attrs.from, id: e.attrs.id, condition: error.elements[0]?.name, type: error.attrs.type };
}

function features(reply: Element): string[] {
  return reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var!);
}

function formField(form: Element, v: string): string[] | undefined {
  return form.getChildren('field').find((f) => f.attrs.var === v)?.getChildren('value').map((e) => e.text());
}

/** A stand-in for modules/mam: records appends and answers queries. */
function fakeArchive(log: { appended: { owner: string; with: string; body?: string; at?: number }[]; queried: { owner: string; requester: string }[] }) {
  return defineModule({
    name: 'archive',
    setup(api) {
      let n = 0;
      api.provide('archive' as never, {
        async append(owner: string, entry: { with: string; stanza: Element; direction: string; at?: number }) {
          log.appended.push({ owner, with: entry.with, body: entry.stanza.getChildText('body'), at: entry.at });
          return `sid-${++n}`;
        },
        async query(owner: string, query: Element, requester: Jid) {
          log.queried.push({ owner, requester: requester.toString() });
          if (query.attrs.queryid === 'bad') throw new StanzaError('bad-request', 'bad query');
          return x('fin', { xmlns: NS_MAM, complete: 'true' });
        },
      } as never);
    },
  });
}

describe('muc (XEP-0045)', () => {
  let host: TestHost;
  let service: MucService;
  const options: Record<string, unknown> = {};

  async function start(opts: Record<string, unknown> = {}, extra: XmppModule[] = [], database?: string): Promise<TestHost> {
    const h = await createTestHost({ modules: [roster, presence, disco, ...extra, muc], options: { muc: { ...options, ...opts } }, database });
    service = await grabService(h);
    return h;
  }

  async function grabService(h: TestHost): Promise<MucService> {
    let s: MucService | undefined;
    await h.core.modules.load(defineModule({ name: `grab-${Math.random()}`, setup(api) { s = api.service('muc'); } }));
    return s!;
  }

  beforeEach(async () => {
    host = await start();
  });
  afterEach(() => host.close());

  /** Enters (creating if needed) and takes what came back. */
  async function enter(s: FakeSession, nick: string, o: Parameters<typeof joinPresence>[1] = {}): Promise<Element[]> {
    await s.receive(joinPresence(nick, o));
    return norm(s.take());
  }

  /** Creates a room as `owner` with an instant or given configuration; all sessions' inboxes are emptied. */
  async function createRoom(owner: FakeSession, nick: string, fields: Record<string, string | string[]> = {}, room = ROOM): Promise<void> {
    await owner.receive(joinPresence(nick, { room }));
    await owner.receive(ownerSet('create', submit(fields), room));
    const got = owner.take();
    expect(got.find((e) => e.attrs.id === 'create')).toEqual(result('create', owner.jid.toString(), room));
  }

  async function configure(owner: FakeSession, fields: Record<string, string | string[]>): Promise<void> {
    await owner.receive(ownerSet('cfg', submit(fields)));
    expect(owner.take().find((e) => e.attrs.id === 'cfg')).toEqual(result('cfg', owner.jid.toString()));
  }

  async function connectAll(): Promise<[FakeSession, FakeSession, FakeSession]> {
    return [await host.connect(A), await host.connect(B), await host.connect(C)];
  }

  function takeAll(...ss: FakeSession[]): void {
    for (const s of ss) s.take();
  }

  // ---- the service ----------------------------------------------------------

  describe('the service', () => {
    it('is listed in the server disco#items and answers disco#info as a conference service', async () => {
      const alice = await host.connect(A);
      await alice.receive(x('iq', { type: 'get', id: 'i1', to: 'example.test' }, x('query', { xmlns: NS_DISCO_ITEMS })));
      expect(alice.take()).toEqual([result('i1', A, 'example.test', x('query', { xmlns: NS_DISCO_ITEMS }, x('item', { jid: SVC, name: 'Chatrooms' })))]);
      await alice.receive(discoInfo('i2', SVC));
      expect(alice.take()).toEqual([result('i2', A, SVC, x('query', { xmlns: NS_DISCO_INFO },
        x('identity', { category: 'conference', name: 'Chatrooms', type: 'text' }),
        [NS_MUC, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC_UNIQUE, NS_PING].sort().map((f) => x('feature', { var: f }))))]);
    });

    it('lists public rooms (not hidden or locked ones) in its disco#items', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_roomname': 'The Coven' });
      await createRoom(alice, 'alice', { 'muc#roomconfig_publicroom': '0' }, `hidden@${SVC}`);
      await createRoom(alice, 'alice', {}, `aaa@${SVC}`);
      await alice.receive(joinPresence('alice', { room: `locked@${SVC}` }));
      await bob.receive(x('iq', { type: 'get', id: 'i1', to: SVC }, x('query', { xmlns: NS_DISCO_ITEMS })));
      expect(bob.take()).toEqual([result('i1', B, SVC, x('query', { xmlns: NS_DISCO_ITEMS },
        x('item', { jid: `aaa@${SVC}`, name: 'aaa' }), x('item', { jid: ROOM, name: 'The Coven' })))]);
    });

    it('answers pings, gives unique room names and refuses other requests', async () => {
      const alice = await host.connect(A);
      await alice.receive(x('iq', { type: 'get', id: 'p1', to: SVC }, x('ping', { xmlns: NS_PING })));
      await alice.receive(x('iq', { type: 'get', id: 'u1', to: SVC }, x('unique', { xmlns: NS_MUC_UNIQUE })));
      await alice.receive(x('iq', { type: 'get', id: 'v1', to: SVC }, x('query', { xmlns: 'jabber:iq:version' })));
      const [ping, unique, version] = alice.take();
      expect(ping).toEqual(result('p1', A, SVC));
      expect(unique!.getChild('unique', NS_MUC_UNIQUE)!.text()).toMatch(/^[0-9a-f]{16}$/);
      expect(version).toEqual(x('iq', { type: 'error', id: 'v1', from: SVC, to: A }, stanzaError('service-unavailable', 'cancel', undefined, SVC)));
    });
  });

  // ---- creation ---------------------------------------------------------------

  describe('creating rooms', () => {
    it('creates a reserved room, locked with status 201 until the owner submits the configuration form (§10.1.3)', async () => {
      const [alice, bob] = await connectAll();
      expect(await enter(alice, 'Crone', { id: 'j1' })).toEqual([
        mp(occ('Crone'), A, { affiliation: 'owner', jid: A, role: 'moderator' }, [110, 201], { id: 'j1' }),
        subjectMsg(A),
      ]);
      // Locked: nobody else may enter, and the room is not discoverable.
      const refused = await enter(bob, 'bob', { id: 'j2' });
      expect(refused).toEqual([x('presence', { type: 'error', id: 'j2', from: occ('bob'), to: B }, x('x', { xmlns: NS_MUC }),
        stanzaError('item-not-found', 'cancel', 'The room is locked until its owner configures it'))]);
      await bob.receive(discoInfo('d1'));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'item-not-found' });

      // The owner asks for the form, fills in a name and submits.
      await alice.receive(x('iq', { type: 'get', id: 'f1', to: ROOM }, x('query', { xmlns: NS_MUC_OWNER })));
      const form = alice.take()[0]!.getChild('query', NS_MUC_OWNER)!.getChild('x', NS_DATA)!;
      expect(form.attrs.type).toBe('form');
      expect(formField(form, 'FORM_TYPE')).toEqual(['http://jabber.org/protocol/muc#roomconfig']);
      expect(form.getChildren('field').map((f) => f.attrs.var)).toEqual([
        'FORM_TYPE', 'muc#roomconfig_roomname', 'muc#roomconfig_roomdesc', 'muc#roomconfig_persistentroom',
        'muc#roomconfig_publicroom', 'muc#roomconfig_membersonly', 'muc#roomconfig_moderatedroom',
        'muc#roomconfig_passwordprotectedroom', 'muc#roomconfig_roomsecret', 'muc#roomconfig_maxusers', 'muc#roomconfig_whois',
        'muc#roomconfig_allowpm', 'muc#roomconfig_allowinvites', 'muc#roomconfig_changesubject', 'muc#maxhistoryfetch',
        'muc#roomconfig_enablearchiving',
      ]);
      expect(formField(form, 'muc#roomconfig_persistentroom')).toEqual(['0']);
      expect(formField(form, 'muc#roomconfig_maxusers')).toEqual(['200']);
      expect(formField(form, 'muc#maxhistoryfetch')).toEqual(['50']);
      await alice.receive(ownerSet('c1', submit({ 'muc#roomconfig_roomname': 'A Dark Cave', 'muc#roomconfig_roomdesc': 'The place for all good witches!' })));
      // Configuring a new room sends no change notification (§10.1.3).
      expect(alice.take()).toEqual([result('c1', A)]);
      expect(await enter(bob, 'bob')).toEqual([
        mp(occ('Crone'), B, { affiliation: 'owner', role: 'moderator' }),
        mp(occ('bob'), B, { affiliation: 'none', role: 'participant' }, [110]),
        subjectMsg(B),
      ]);
    });

    it('creates an instant room from an empty submission (§10.1.2)', async () => {
      const [alice, bob] = await connectAll();
      await enter(alice, 'alice');
      await alice.receive(ownerSet('c1', x('x', { xmlns: NS_DATA, type: 'submit' })));
      expect(alice.take()).toEqual([result('c1', A)]);
      expect((await enter(bob, 'bob')).filter((e) => e.name === 'presence')).toHaveLength(2);
    });

    it('creates an instant room at once for groupchat 1.0 clients (no MUC element)', async () => {
      const [alice, bob] = await connectAll();
      await alice.receive(x('presence', { to: occ('alice') }));
      expect(norm(alice.take())).toEqual([mp(occ('alice'), A, { affiliation: 'owner', jid: A, role: 'moderator' }, [110, 201]), subjectMsg(A)]);
      await bob.receive(x('presence', { to: occ('bob') }));
      expect(norm(bob.take())).toHaveLength(3);
    });

    it('destroys a new room whose owner cancels the configuration', async () => {
      const alice = await host.connect(A);
      await enter(alice, 'alice');
      await alice.receive(ownerSet('c1', x('x', { xmlns: NS_DATA, type: 'cancel' })));
      expect(alice.take()).toEqual([
        x('presence', { from: occ('alice'), to: A, type: 'unavailable' },
          x('x', { xmlns: NS_MUC_USER }, x('item', { affiliation: 'none', role: 'none' }), x('destroy'))),
        result('c1', A),
      ]);
      expect(service.listRooms()).toEqual([]);
    });

    it('refuses entering without a nick (jid-malformed), blank or too long nicks (not-acceptable)', async () => {
      await host.close();
      host = await start({ maxNickLength: 5 });
      const alice = await host.connect(A);
      await alice.receive(x('presence', { to: ROOM, id: 'j1' }, x('x', { xmlns: NS_MUC })));
      expect(alice.take()).toEqual([x('presence', { type: 'error', id: 'j1', from: ROOM, to: A }, x('x', { xmlns: NS_MUC }),
        stanzaError('jid-malformed', 'modify', 'A nickname is needed to enter the room'))]);
      await alice.receive(joinPresence('   ', { id: 'j2' }));
      expect(errorOf(alice.take())).toEqual({ name: 'presence', from: occ('   '), id: 'j2', condition: 'not-acceptable', type: 'modify' });
      await alice.receive(joinPresence('abcdef', { id: 'j3' }));
      expect(errorOf(alice.take())).toMatchObject({ id: 'j3', condition: 'not-acceptable' });
      await alice.receive(joinPresence('abcde', { id: 'j4' }));
      expect(alice.take()[0]!.attrs.type).toBeUndefined();
    });

    it('refuses room creation when it is turned off (not-allowed), and beyond maxRoomsPerUser', async () => {
      await host.close();
      host = await start({ allowRoomCreation: false });
      let alice = await host.connect(A);
      await alice.receive(joinPresence('alice', { id: 'j1' }));
      expect(alice.take()).toEqual([x('presence', { type: 'error', id: 'j1', from: occ('alice'), to: A }, x('x', { xmlns: NS_MUC }),
        stanzaError('not-allowed', 'cancel', 'Rooms cannot be created on this service'))]);
      // The CLI still may.
      await service.createRoom(ROOM, { owner: 'alice@example.test' });
      expect(await enter(alice, 'alice')).toHaveLength(2);
      await host.close();

      host = await start({ maxRoomsPerUser: 2 });
      alice = await host.connect(A);
      await createRoom(alice, 'a', {}, `r1@${SVC}`);
      await createRoom(alice, 'a', {}, `r2@${SVC}`);
      await alice.receive(joinPresence('a', { room: `r3@${SVC}`, id: 'j3' }));
      expect(errorOf(alice.take())).toEqual({ name: 'presence', from: `r3@${SVC}/a`, id: 'j3', condition: 'not-allowed', type: 'cancel' });
    });

    it('refuses bad configuration values with not-acceptable and forms of another type with bad-request', async () => {
      const alice = await host.connect(A);
      await createRoom(alice, 'alice');
      const attempts: [Record<string, string | string[]>, string][] = [
        [{ 'muc#roomconfig_persistentroom': 'maybe' }, 'not-acceptable'],
        [{ 'muc#roomconfig_maxusers': '201' }, 'not-acceptable'],
        [{ 'muc#roomconfig_whois': 'participants' }, 'not-acceptable'],
        [{ 'muc#roomconfig_allowpm': 'everybody' }, 'not-acceptable'],
        [{ 'muc#maxhistoryfetch': '51' }, 'not-acceptable'],
        [{ 'muc#roomconfig_passwordprotectedroom': '1' }, 'not-acceptable'],
      ];
      for (const [fields, condition] of attempts) {
        await alice.receive(ownerSet('bad', submit(fields)));
        expect(errorOf(alice.take())).toMatchObject({ name: 'iq', condition });
      }
      await alice.receive(ownerSet('bad', x('x', { xmlns: NS_DATA, type: 'submit' },
        x('field', { var: 'FORM_TYPE' }, x('value', null, 'urn:other')))));
      expect(errorOf(alice.take())).toMatchObject({ condition: 'bad-request' });
      await alice.receive(ownerSet('bad', x('x', { xmlns: NS_DATA, type: 'form' })));
      expect(errorOf(alice.take())).toMatchObject({ condition: 'bad-request' });
    });

    it('lets only owners configure or destroy (forbidden)', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      await bob.receive(x('iq', { type: 'get', id: 'f1', to: ROOM }, x('query', { xmlns: NS_MUC_OWNER })));
      expect(bob.take()).toEqual([x('iq', { type: 'error', id: 'f1', from: ROOM, to: B }, stanzaError('forbidden', 'auth', 'Only owners may configure the room'))]);
      await bob.receive(ownerSet('d1', x('destroy')));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'forbidden' });
    });
  });

  // ---- entering and leaving -------------------------------------------------

  describe('occupants', () => {
    it('sends the occupants, the self-presence, history and subject in that order, and announces the newcomer (§7.2.3)', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      await alice.receive(x('message', { to: ROOM, type: 'groupchat' }, x('subject', null, 'Spells')));
      await bob.receive(groupchat('hello', 'm1'));
      takeAll(alice, bob);
      await carol.receive(x('presence', { to: occ('carol'), id: 'j1' }, x('show', null, 'away'), x('x', { xmlns: NS_MUC })));
      const got = norm(carol.take());
      expect(got.slice(0, 3)).toEqual([
        mp(occ('alice'), C, { affiliation: 'owner', role: 'moderator' }),
        mp(occ('bob'), C, { affiliation: 'none', role: 'participant' }),
        mp(occ('carol'), C, { affiliation: 'none', role: 'participant' }, [110], { id: 'j1', payload: [x('show', null, 'away')] }),
      ]);
      expect(got[3]!.attrs).toMatchObject({ from: occ('bob'), to: C, type: 'groupchat', id: 'm1' });
      expect(got[3]!.getChild('delay', NS_DELAY)!.attrs).toEqual({ xmlns: NS_DELAY, from: ROOM, stamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
      expect(got[4]).toEqual(subjectMsg(C, 'Spells', occ('alice')));
      expect(got).toHaveLength(5);
      // The moderator sees the real JID, the participant does not (semi-anonymous).
      expect(alice.take()).toEqual([mp(occ('carol'), A, { affiliation: 'none', jid: C, role: 'participant' }, [], { payload: [x('show', null, 'away')] })]);
      expect(bob.take()).toEqual([mp(occ('carol'), B, { affiliation: 'none', role: 'participant' }, [], { payload: [x('show', null, 'away')] })]);
    });

    it('shows real JIDs to everyone in a non-anonymous room, with status 100', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_whois': 'anyone' });
      expect(await enter(bob, 'bob')).toEqual([
        mp(occ('alice'), B, { affiliation: 'owner', jid: A, role: 'moderator' }),
        mp(occ('bob'), B, { affiliation: 'none', jid: B, role: 'participant' }, [100, 110]),
        subjectMsg(B),
      ]);
    });

    it('says so with status 210 when the nick was normalised', async () => {
      const alice = await host.connect(A);
      // 'e' + U+0301 becomes the precomposed 'é' (PRECIS OpaqueString, NFC).
      const got = await enter(alice, 'Rene\u0301', { id: 'j1' });
      expect(got[0]).toEqual(mp(occ('René'), A, { affiliation: 'owner', jid: A, role: 'moderator' }, [110, 201, 210], { id: 'j1' }));
    });

    it('answers a nick in use with conflict', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'witch');
      await bob.receive(joinPresence('witch', { id: 'j1' }));
      expect(bob.take()).toEqual([x('presence', { type: 'error', id: 'j1', from: occ('witch'), to: B }, x('x', { xmlns: NS_MUC }),
        stanzaError('conflict', 'cancel', 'That nickname is already in use'))]);
      expect(alice.take()).toEqual([]);
    });

    it('changes nicks with status 303, and refuses a nick in use (§7.6)', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice);
      await bob.receive(x('presence', { to: occ('alice'), id: 'n0' }));
      expect(errorOf(bob.take())).toEqual({ name: 'presence', from: occ('alice'), id: 'n0', condition: 'conflict', type: 'cancel' });
      await bob.receive(x('presence', { to: occ('robert'), id: 'n1' }));
      expect(bob.take()).toEqual([
        mp(occ('bob'), B, { affiliation: 'none', nick: 'robert', role: 'participant' }, [110, 303], { type: 'unavailable' }),
        mp(occ('robert'), B, { affiliation: 'none', role: 'participant' }, [110], { id: 'n1' }),
      ]);
      expect(alice.take()).toEqual([
        mp(occ('bob'), A, { affiliation: 'none', jid: B, nick: 'robert', role: 'participant' }, [303], { type: 'unavailable' }),
        mp(occ('robert'), A, { affiliation: 'none', jid: B, role: 'participant' }),
      ]);
      expect(service.occupants(ROOM)!.map((o) => o.nick).sort()).toEqual(['alice', 'robert']);
    });

    it('broadcasts presence changes', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice);
      await bob.receive(x('presence', { to: occ('bob') }, x('show', null, 'dnd'), x('status', null, 'brewing')));
      const payload = [x('show', null, 'dnd'), x('status', null, 'brewing')];
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'none', role: 'participant' }, [110], { payload })]);
      expect(alice.take()).toEqual([mp(occ('bob'), A, { affiliation: 'none', jid: B, role: 'participant' }, [], { payload })]);
    });

    it('sends the room state again to a client that re-sends the join presence', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice);
      expect(await enter(bob, 'bob', { id: 'again' })).toEqual([
        mp(occ('alice'), B, { affiliation: 'owner', role: 'moderator' }),
        mp(occ('bob'), B, { affiliation: 'none', role: 'participant' }, [110], { id: 'again' }),
        subjectMsg(B),
      ]);
    });

    it('lets occupants leave with status 110 for themselves and the status text for everyone (§7.14)', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice);
      await bob.receive(x('presence', { to: occ('bob'), type: 'unavailable' }, x('status', null, 'gone where the goblins go')));
      const payload = [x('status', null, 'gone where the goblins go')];
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'none', role: 'none' }, [110], { type: 'unavailable', payload })]);
      expect(alice.take()).toEqual([mp(occ('bob'), A, { affiliation: 'none', jid: B, role: 'none' }, [], { type: 'unavailable', payload })]);
    });

    it('destroys a temporary room when its last occupant leaves, and keeps a persistent one', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await createRoom(alice, 'alice', { 'muc#roomconfig_persistentroom': '1' }, `keep@${SVC}`);
      await alice.receive(x('presence', { to: occ('alice'), type: 'unavailable' }));
      await alice.receive(x('presence', { to: `keep@${SVC}/alice`, type: 'unavailable' }));
      alice.take();
      expect(service.listRooms().map((r) => r.jid)).toEqual([`keep@${SVC}`]);
      await bob.receive(discoInfo('d1'));
      expect(bob.take()).toEqual([x('iq', { type: 'error', id: 'd1', from: ROOM, to: B }, stanzaError('item-not-found', 'cancel', 'No such room'))]);
      // Entering again makes a new room, owned by whoever comes first.
      expect((await enter(bob, 'bob'))[0]!.getChild('x', NS_MUC_USER)!.getChildren('status').map((s) => s.attrs.code)).toEqual(['110', '201']);
    });

    it('removes the occupants of a session that ends', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice);
      await host.disconnect(bob);
      expect(alice.take()).toEqual([mp(occ('bob'), A, { affiliation: 'none', jid: B, role: 'none' }, [], { type: 'unavailable' })]);
      expect(service.occupants(ROOM)!.map((o) => o.nick)).toEqual(['alice']);
      // And the room goes with its last occupant.
      await host.disconnect(alice);
      expect(service.listRooms()).toEqual([]);
    });

    it('removes an occupant whose client is gone (a bounced groupchat message), with status 333', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice);
      // Bob's session vanished without the server noticing: the router bounces what goes to it.
      host.core.sessions.remove(bob);
      await alice.receive(groupchat('anyone there?', 'm1'));
      expect(alice.take()).toEqual([
        x('message', { from: occ('alice'), to: A, type: 'groupchat', id: 'm1' }, x('body', null, 'anyone there?')),
        mp(occ('bob'), A, { affiliation: 'none', jid: B, role: 'none' }, [333], { type: 'unavailable' }),
      ]);
      expect(service.occupants(ROOM)!.map((o) => o.nick)).toEqual(['alice']);
    });

    it('lets two sessions of one account share a nick', async () => {
      const [alice, bob] = await connectAll();
      const bob2 = await host.connect('bob@example.test/phone');
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice);
      const got = await enter(bob2, 'bob');
      expect(got.filter((e) => e.name === 'presence')).toHaveLength(2);
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'none', role: 'participant' }, [110])]);
      expect(alice.take()).toEqual([mp(occ('bob'), A, { affiliation: 'none', jid: 'bob@example.test/phone', role: 'participant' })]);
      // A private message reaches both sessions.
      await alice.receive(x('message', { to: occ('bob'), type: 'chat', id: 'pm' }, x('body', null, 'psst')));
      expect(bob.take()).toHaveLength(1);
      expect(bob2.take()).toHaveLength(1);
      // One session leaving leaves the occupant in the room.
      await bob2.receive(x('presence', { to: occ('bob'), type: 'unavailable' }));
      expect(bob2.take()).toEqual([mp(occ('bob'), 'bob@example.test/phone', { affiliation: 'none', role: 'none' }, [110], { type: 'unavailable' })]);
      expect(alice.take()).toEqual([mp(occ('bob'), A, { affiliation: 'none', jid: B, role: 'participant' })]);
      expect(service.occupants(ROOM)!.find((o) => o.nick === 'bob')!.sessions).toEqual([B]);
    });

    it('refuses entry when the room is full (service-unavailable, wait), except to admins and owners', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_maxusers': '2' });
      await enter(bob, 'bob');
      await carol.receive(joinPresence('carol', { id: 'j1' }));
      expect(carol.take()).toEqual([x('presence', { type: 'error', id: 'j1', from: occ('carol'), to: C }, x('x', { xmlns: NS_MUC }),
        stanzaError('service-unavailable', 'wait', 'The room is full'))]);
      await alice.receive(adminSet('a1', x('item', { affiliation: 'admin', jid: 'carol@example.test' })));
      expect(await enter(carol, 'carol')).toHaveLength(4);
    });
  });

  // ---- access control ---------------------------------------------------------

  describe('members-only and password-protected rooms', () => {
    it('lets only members in (registration-required), and removes those whose membership is revoked (321)', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_membersonly': '1' });
      await bob.receive(joinPresence('bob', { id: 'j1' }));
      expect(bob.take()).toEqual([x('presence', { type: 'error', id: 'j1', from: occ('bob'), to: B }, x('x', { xmlns: NS_MUC }),
        stanzaError('registration-required', 'auth', 'This room is for members only'))]);
      await alice.receive(adminSet('m1', x('item', { affiliation: 'member', jid: 'bob@example.test' })));
      expect(alice.take()).toEqual([result('m1', A)]);
      expect((await enter(bob, 'bob'))[1]).toEqual(mp(occ('bob'), B, { affiliation: 'member', role: 'participant' }, [110]));
      takeAll(alice);
      await alice.receive(adminSet('m2', x('item', { affiliation: 'none', jid: 'bob@example.test' }, x('reason', null, 'Out'))));
      expect(alice.take()).toEqual([
        result('m2', A),
        mp(occ('bob'), A, { affiliation: 'none', jid: B, role: 'none' }, [321], { type: 'unavailable', itemChildren: [x('actor', { nick: 'alice' }), x('reason', null, 'Out')] }),
      ]);
      expect(bob.take()).toEqual([
        mp(occ('bob'), B, { affiliation: 'none', role: 'none' }, [110, 321], { type: 'unavailable', itemChildren: [x('actor', { nick: 'alice' }), x('reason', null, 'Out')] }),
      ]);
    });

    it('removes non-members with status 322 when a room becomes members-only, and notifies the change (104)', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(adminSet('m1', x('item', { affiliation: 'member', jid: 'carol@example.test' })));
      await enter(bob, 'bob');
      await enter(carol, 'carol');
      takeAll(alice, bob, carol);
      await configure(alice, { 'muc#roomconfig_membersonly': '1' });
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'none', role: 'none' }, [110, 322], { type: 'unavailable' })]);
      expect(norm(carol.take())).toEqual([
        mp(occ('bob'), C, { affiliation: 'none', role: 'none' }, [322], { type: 'unavailable' }),
        x('message', { from: ROOM, to: C, type: 'groupchat' }, x('x', { xmlns: NS_MUC_USER }, status(104))),
      ]);
    });

    it('asks for the password (not-authorized) and lets in with it; owners need none', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'cauldronburn' });
      await bob.receive(joinPresence('bob', { id: 'j1' }));
      expect(bob.take()).toEqual([x('presence', { type: 'error', id: 'j1', from: occ('bob'), to: B }, x('x', { xmlns: NS_MUC }),
        stanzaError('not-authorized', 'auth', 'This room needs a password'))]);
      await bob.receive(joinPresence('bob', { id: 'j2', password: 'wrong' }));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'not-authorized', type: 'auth' });
      expect(await enter(bob, 'bob', { password: 'cauldronburn' })).toHaveLength(3);
      await alice.receive(x('presence', { to: occ('alice'), type: 'unavailable' }));
      alice.take();
      expect((await enter(alice, 'alice'))).toHaveLength(3);
    });

    it('keeps banned users out (forbidden) and lists them with the reason', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(adminSet('b1', x('item', { affiliation: 'outcast', jid: 'bob@example.test' }, x('reason', null, 'Treason'))));
      await bob.receive(joinPresence('bob', { id: 'j1' }));
      expect(bob.take()).toEqual([x('presence', { type: 'error', id: 'j1', from: occ('bob'), to: B }, x('x', { xmlns: NS_MUC }),
        stanzaError('forbidden', 'auth', 'You are banned from this room'))]);
      alice.take();
      await alice.receive(adminGet('l1', { affiliation: 'outcast' }));
      expect(alice.take()).toEqual([result('l1', A, ROOM, x('query', { xmlns: NS_MUC_ADMIN },
        x('item', { affiliation: 'outcast', jid: 'bob@example.test' }, x('reason', null, 'Treason'))))]);
    });

    it('bans a whole domain', async () => {
      const [alice] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(adminSet('b1', x('item', { affiliation: 'outcast', jid: 'evil.test' })));
      alice.take();
      const room = (service as unknown as { rooms: Map<string, { affiliationOf(j: Jid): string }> }).rooms.get(ROOM)!;
      expect(room.affiliationOf(Jid.parse('eve@evil.test/x'))).toBe('outcast');
      expect(room.affiliationOf(Jid.parse('eve@good.test/x'))).toBe('none');
    });

    it('reserves the nick of a member for that member', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(adminSet('m1', x('item', { affiliation: 'member', jid: 'bob@example.test', nick: 'thirdwitch' })));
      await carol.receive(joinPresence('thirdwitch', { id: 'j1' }));
      expect(errorOf(carol.take())).toMatchObject({ condition: 'conflict' });
      await bob.receive(discoInfo('r1', ROOM, 'x-roomuser-item'));
      expect(bob.take()).toEqual([result('r1', B, ROOM, x('query', { xmlns: NS_DISCO_INFO, node: 'x-roomuser-item' },
        x('identity', { category: 'conference', name: 'thirdwitch', type: 'text' })))]);
      expect((await enter(bob, 'thirdwitch'))[1]!.attrs.type).toBeUndefined();
      await alice.receive(adminGet('l1', { affiliation: 'member' }));
      expect(alice.take().pop()).toEqual(result('l1', A, ROOM, x('query', { xmlns: NS_MUC_ADMIN },
        x('item', { affiliation: 'member', jid: 'bob@example.test', nick: 'thirdwitch' }))));
    });
  });

  // ---- moderation ---------------------------------------------------------------

  describe('roles and affiliations', () => {
    it('kicks with status 307 (§8.2), and not oneself or someone of higher affiliation', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      await enter(carol, 'carol');
      await alice.receive(adminSet('a1', x('item', { affiliation: 'admin', jid: 'carol@example.test' })));
      takeAll(alice, bob, carol);
      await carol.receive(adminSet('k0', x('item', { nick: 'alice', role: 'none' })));
      expect(carol.take()).toEqual([x('iq', { type: 'error', id: 'k0', from: ROOM, to: C }, stanzaError('not-allowed', 'cancel', 'That occupant has a higher affiliation than you'))]);
      await carol.receive(adminSet('k1', x('item', { nick: 'carol', role: 'none' })));
      expect(errorOf(carol.take())).toMatchObject({ condition: 'conflict' });
      await bob.receive(adminSet('k2', x('item', { nick: 'carol', role: 'none' })));
      expect(bob.take()).toEqual([x('iq', { type: 'error', id: 'k2', from: ROOM, to: B }, stanzaError('forbidden', 'auth', 'Only moderators may change roles'))]);

      await carol.receive(adminSet('k3', x('item', { nick: 'bob', role: 'none' }, x('reason', null, 'Avaunt, you cullion!'))));
      const kicked = { itemChildren: [x('actor', { nick: 'carol' }), x('reason', null, 'Avaunt, you cullion!')], type: 'unavailable' };
      expect(carol.take()).toEqual([result('k3', C), mp(occ('bob'), C, { affiliation: 'none', jid: B, role: 'none' }, [307], kicked)]);
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'none', role: 'none' }, [110, 307], kicked)]);
      expect(alice.take()).toEqual([mp(occ('bob'), A, { affiliation: 'none', jid: B, role: 'none' }, [307], kicked)]);
      // A kicked user may come back.
      expect(await enter(bob, 'bob')).toHaveLength(4);
    });

    it('bans with status 301 (§9.1); an admin cannot ban an owner', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(adminSet('a1', x('item', { affiliation: 'admin', jid: 'carol@example.test' })));
      await enter(bob, 'bob');
      await enter(carol, 'carol');
      takeAll(alice, bob, carol);
      await carol.receive(adminSet('b0', x('item', { affiliation: 'outcast', jid: 'alice@example.test' })));
      expect(errorOf(carol.take())).toMatchObject({ condition: 'not-allowed', type: 'cancel' });
      await carol.receive(adminSet('b1', x('item', { affiliation: 'outcast', jid: 'bob@example.test' }, x('reason', null, 'Treason'))));
      const banned = { itemChildren: [x('actor', { nick: 'carol' }), x('reason', null, 'Treason')], type: 'unavailable' };
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'outcast', role: 'none' }, [110, 301], banned)]);
      expect(alice.take()).toEqual([mp(occ('bob'), A, { affiliation: 'outcast', jid: B, role: 'none' }, [301], banned)]);
      expect(carol.take()).toEqual([result('b1', C), mp(occ('bob'), C, { affiliation: 'outcast', jid: B, role: 'none' }, [301], banned)]);
    });

    it('grants and revokes voice in a moderated room (§8.3, §8.4)', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_moderatedroom': '1' });
      expect((await enter(bob, 'bob'))[1]).toEqual(mp(occ('bob'), B, { affiliation: 'none', role: 'visitor' }, [110]));
      takeAll(alice);
      await bob.receive(groupchat('may I?', 'v0'));
      expect(bob.take()).toEqual([x('message', { type: 'error', id: 'v0', from: ROOM, to: B }, x('body', null, 'may I?'),
        stanzaError('forbidden', 'auth', 'Visitors may not send messages in a moderated room'))]);
      await alice.receive(adminSet('v1', x('item', { nick: 'bob', role: 'participant' }, x('reason', null, 'A worthy witch indeed!'))));
      expect(alice.take()).toEqual([result('v1', A), mp(occ('bob'), A, { affiliation: 'none', jid: B, role: 'participant' }, [], { itemChildren: [x('reason', null, 'A worthy witch indeed!')] })]);
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'none', role: 'participant' }, [110], { itemChildren: [x('reason', null, 'A worthy witch indeed!')] })]);
      await bob.receive(groupchat('thanks', 'v2'));
      expect(bob.take()).toHaveLength(1);
      await alice.receive(adminSet('v3', x('item', { nick: 'bob', role: 'visitor' })));
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'none', role: 'visitor' }, [110])]);
      // The voice list (participants) is for moderators.
      await alice.receive(adminGet('l1', { role: 'visitor' }));
      expect(alice.take().pop()).toEqual(result('l1', A, ROOM, x('query', { xmlns: NS_MUC_ADMIN },
        x('item', { affiliation: 'none', jid: B, nick: 'bob', role: 'visitor' }))));
      await bob.receive(adminGet('l2', { role: 'participant' }));
      expect(bob.take()).toEqual([x('iq', { type: 'error', id: 'l2', from: ROOM, to: B }, stanzaError('forbidden', 'auth', 'Only moderators may list occupants by role'))]);
    });

    it('handles voice requests: moderators get a form and approving it grants voice (§7.13, §8.6)', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_moderatedroom': '1' });
      await enter(bob, 'bob');
      takeAll(alice);
      const requestForm = (fields: Record<string, string>) => x('x', { xmlns: NS_DATA, type: 'submit' },
        x('field', { var: 'FORM_TYPE' }, x('value', null, NS_MUC_REQUEST)),
        Object.entries(fields).map(([k, v]) => x('field', { var: k }, x('value', null, v))));
      await bob.receive(x('message', { to: ROOM }, requestForm({ 'muc#role': 'participant' })));
      const [request] = norm(alice.take());
      const form = request!.getChild('x', NS_DATA)!;
      expect(formField(form, 'muc#roomnick')).toEqual(['bob']);
      expect(formField(form, 'muc#jid')).toEqual([B]);
      expect(formField(form, 'muc#request_allow')).toEqual(['false']);
      await alice.receive(x('message', { to: ROOM }, requestForm({ 'muc#role': 'participant', 'muc#roomnick': 'bob', 'muc#request_allow': 'true' })));
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'none', role: 'participant' }, [110])]);
    });

    it('grants and revokes admin and moderator status; only owners touch admins and owners', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      await enter(carol, 'carol');
      takeAll(alice, bob, carol);
      await alice.receive(adminSet('a1', x('item', { affiliation: 'admin', jid: 'bob@example.test' })));
      expect(carol.take()).toEqual([mp(occ('bob'), C, { affiliation: 'admin', role: 'moderator' })]);
      expect(bob.take()).toEqual([mp(occ('bob'), B, { affiliation: 'admin', jid: B, role: 'moderator' }, [110])]);
      // An admin may not make owners or admins.
      await bob.receive(adminSet('a2', x('item', { affiliation: 'owner', jid: 'carol@example.test' })));
      expect(bob.take()).toEqual([x('iq', { type: 'error', id: 'a2', from: ROOM, to: B }, stanzaError('forbidden', 'auth', 'Only owners may grant admin or owner status'))]);
      // A moderator role without affiliation, granted and revoked by an admin.
      await bob.receive(adminSet('m1', x('item', { nick: 'carol', role: 'moderator' })));
      expect(carol.take()).toEqual([mp(occ('carol'), C, { affiliation: 'none', jid: C, role: 'moderator' }, [110])]);
      await bob.receive(adminSet('m2', x('item', { nick: 'carol', role: 'participant' })));
      expect(carol.take()).toEqual([mp(occ('carol'), C, { affiliation: 'none', role: 'participant' }, [110])]);
      // Nobody takes an admin's moderator status.
      await alice.receive(adminSet('m3', x('item', { nick: 'bob', role: 'participant' })));
      expect(errorOf(alice.take())).toMatchObject({ condition: 'not-allowed' });
      // Lists: admins for owners only.
      await bob.receive(adminGet('l1', { affiliation: 'admin' }));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'forbidden' });
      await alice.receive(adminGet('l2', { affiliation: 'admin' }));
      expect(alice.take().pop()).toEqual(result('l2', A, ROOM, x('query', { xmlns: NS_MUC_ADMIN }, x('item', { affiliation: 'admin', jid: 'bob@example.test' }))));
      await alice.receive(adminGet('l3', { affiliation: 'owner' }));
      expect(alice.take().pop()).toEqual(result('l3', A, ROOM, x('query', { xmlns: NS_MUC_ADMIN }, x('item', { affiliation: 'owner', jid: 'alice@example.test' }))));
      // Revoking admin status makes a participant again.
      await alice.receive(adminSet('a3', x('item', { affiliation: 'none', jid: 'bob@example.test' })));
      expect(carol.take()).toEqual([mp(occ('bob'), C, { affiliation: 'none', role: 'participant' })]);
    });

    it('keeps at least one owner (conflict) and applies a list change all or nothing', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice, bob);
      await alice.receive(adminSet('o1', x('item', { affiliation: 'admin', jid: 'alice@example.test' })));
      expect(alice.take()).toEqual([x('iq', { type: 'error', id: 'o1', from: ROOM, to: A }, stanzaError('conflict', 'cancel', 'The room must keep at least one owner'))]);
      await alice.receive(adminSet('o2',
        x('item', { affiliation: 'member', jid: 'carol@example.test' }),
        x('item', { affiliation: 'nonsense', jid: 'dave@example.test' })));
      expect(errorOf(alice.take())).toMatchObject({ condition: 'bad-request' });
      await alice.receive(adminGet('l1', { affiliation: 'member' }));
      expect(alice.take()).toEqual([result('l1', A, ROOM, x('query', { xmlns: NS_MUC_ADMIN }))]);
      // Handing over ownership works.
      await alice.receive(adminSet('o3', x('item', { affiliation: 'owner', jid: 'bob@example.test' }), x('item', { affiliation: 'member', jid: 'alice@example.test' })));
      expect(alice.take()[0]).toEqual(result('o3', A));
      expect(service.listRooms()[0]!.owners).toEqual(['bob@example.test']);
    });

    it('answers malformed admin requests with bad-request, unknown nicks with item-not-found', async () => {
      const [alice] = await connectAll();
      await createRoom(alice, 'alice');
      const bad = [
        adminSet('x1'),
        adminSet('x2', x('item', { nick: 'alice', role: 'participant', affiliation: 'member' })),
        adminSet('x3', x('item', { role: 'participant' })),
        adminSet('x4', x('item', { role: 'chief', nick: 'alice' })),
        adminSet('x5', x('item', { affiliation: 'member' })),
        x('iq', { type: 'get', id: 'x6', to: ROOM }, x('query', { xmlns: NS_MUC_ADMIN })),
      ];
      for (const iq of bad) {
        await alice.receive(iq);
        expect(errorOf(alice.take())).toMatchObject({ id: iq.attrs.id, condition: 'bad-request' });
      }
      await alice.receive(adminSet('x7', x('item', { nick: 'nobody', role: 'none' })));
      expect(errorOf(alice.take())).toMatchObject({ condition: 'item-not-found' });
      await alice.receive(adminSet('x8', x('item', { affiliation: 'member', jid: 'not a jid@@' })));
      expect(errorOf(alice.take())).toMatchObject({ condition: 'jid-malformed' });
    });
  });

  // ---- messages -----------------------------------------------------------------

  describe('messages', () => {
    it('reflects groupchat messages to every occupant with the same id, and refuses non-occupants', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice, bob);
      await bob.receive(x('message', { to: ROOM, type: 'groupchat', id: 'm1' }, x('body', null, 'hi'),
        x('x', { xmlns: NS_MUC_USER }, x('status', { code: '201' })),
        x('stanza-id', { xmlns: NS_SID, id: 'forged', by: ROOM })));
      const reflected = (to: string) => x('message', { from: occ('bob'), to, type: 'groupchat', id: 'm1' }, x('body', null, 'hi'));
      expect(bob.take()).toEqual([reflected(B)]);
      expect(alice.take()).toEqual([reflected(A)]);
      await carol.receive(groupchat('let me in', 'm2'));
      expect(carol.take()).toEqual([x('message', { type: 'error', id: 'm2', from: ROOM, to: C }, x('body', null, 'let me in'),
        stanzaError('not-acceptable', 'modify', 'Only occupants may send messages to the room'))]);
      await bob.receive(x('message', { to: ROOM, type: 'chat', id: 'm3' }, x('body', null, 'hm')));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'bad-request' });
    });

    it('relays private messages with the MUC user element (§7.5) and refuses bad ones', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice, bob);
      await bob.receive(x('message', { to: occ('alice'), type: 'chat', id: 'p1' }, x('body', null, 'psst')));
      expect(alice.take()).toEqual([x('message', { from: occ('bob'), to: A, type: 'chat', id: 'p1' }, x('body', null, 'psst'), x('x', { xmlns: NS_MUC_USER }))]);
      expect(bob.take()).toEqual([]);
      await bob.receive(x('message', { to: occ('nobody'), type: 'chat', id: 'p2' }, x('body', null, '?')));
      expect(bob.take()).toEqual([x('message', { type: 'error', id: 'p2', from: occ('nobody'), to: B }, x('body', null, '?'),
        stanzaError('item-not-found', 'cancel', 'No occupant has that nickname'))]);
      await bob.receive(x('message', { to: occ('alice'), type: 'groupchat', id: 'p3' }, x('body', null, '?')));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'bad-request', type: 'modify' });
      await carol.receive(x('message', { to: occ('alice'), type: 'chat', id: 'p4' }, x('body', null, '?')));
      expect(errorOf(carol.take())).toMatchObject({ condition: 'not-acceptable' });
      await configure(alice, { 'muc#roomconfig_allowpm': 'moderators' });
      takeAll(bob);
      await bob.receive(x('message', { to: occ('alice'), type: 'chat', id: 'p5' }, x('body', null, '?')));
      expect(bob.take()).toEqual([x('message', { type: 'error', id: 'p5', from: occ('alice'), to: B }, x('body', null, '?'),
        stanzaError('forbidden', 'auth', 'Private messages are not allowed in this room'))]);
      await alice.receive(x('message', { to: occ('bob'), type: 'chat', id: 'p6' }, x('body', null, 'ok')));
      expect(bob.take()).toHaveLength(1);
    });

    it('changes the subject (§8.1) when allowed, and delivers it to those who enter later', async () => {
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice, bob);
      await bob.receive(x('message', { to: ROOM, type: 'groupchat', id: 's1' }, x('subject', null, 'Mine')));
      expect(bob.take()).toEqual([x('message', { type: 'error', id: 's1', from: ROOM, to: B },
        stanzaError('forbidden', 'auth', 'You may not change the subject of this room'))]);
      await alice.receive(x('message', { to: ROOM, type: 'groupchat', id: 's2' }, x('subject', null, 'Fire Burn and Cauldron Bubble!')));
      expect(bob.take()).toEqual([x('message', { from: occ('alice'), to: B, type: 'groupchat', id: 's2' }, x('subject', null, 'Fire Burn and Cauldron Bubble!'))]);
      await configure(alice, { 'muc#roomconfig_changesubject': '1' });
      takeAll(alice, bob);
      await bob.receive(x('message', { to: ROOM, type: 'groupchat', id: 's3' }, x('subject', null, 'x'.repeat(1025))));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'not-acceptable' });
      await bob.receive(x('message', { to: ROOM, type: 'groupchat', id: 's4' }, x('subject', null, 'Ours')));
      expect(norm(await enter(carol, 'carol')).pop()).toEqual(subjectMsg(C, 'Ours', occ('bob')));
      // A message with a subject and a body is a message, not a subject change.
      await alice.receive(x('message', { to: ROOM, type: 'groupchat', id: 's5' }, x('subject', null, 'Not'), x('body', null, 'b')));
      await host.connect('dave@example.test/x').then(async (dave) => expect(norm(await enter(dave, 'dave')).pop()).toEqual(subjectMsg('dave@example.test/x', 'Ours', occ('bob'))));
    });

    it('limits each occupant to messageRatePerSecond with a small burst (resource-constraint, wait)', async () => {
      await host.close();
      host = await start({ messageRatePerSecond: 1 });
      const [alice] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(groupchat('1', 'r1'));
      await alice.receive(groupchat('2', 'r2'));
      await alice.receive(groupchat('3', 'r3'));
      const got = alice.take();
      expect(got.slice(0, 2).map((m) => m.attrs.id)).toEqual(['r1', 'r2']);
      expect(got[2]).toEqual(x('message', { type: 'error', id: 'r3', from: ROOM, to: A }, x('body', null, '3'),
        stanzaError('resource-constraint', 'wait', 'You are sending messages too fast')));
    });

    it('stamps archived messages with a stanza-id and sends MAM queries to the archive', async () => {
      await host.close();
      const log = { appended: [] as { owner: string; with: string; body?: string; at?: number }[], queried: [] as { owner: string; requester: string }[] };
      host = await start({}, [fakeArchive(log)]);
      const [alice, bob, carol] = await connectAll();
      await createRoom(alice, 'alice');
      const self = (await enter(bob, 'bob'))[1]!;
      expect(self.getChild('x', NS_MUC_USER)!.getChildren('status').map((s) => s.attrs.code)).toEqual(['110', '170']);
      takeAll(alice);
      await bob.receive(groupchat('archived', 'm1'));
      bob.take();
      expect(log.appended).toEqual([{ owner: ROOM, with: occ('bob'), body: 'archived', at: expect.any(Number) }]);
      expect(alice.take()).toEqual([x('message', { from: occ('bob'), to: A, type: 'groupchat', id: 'm1' },
        x('body', null, 'archived'), x('stanza-id', { xmlns: NS_SID, id: 'sid-1', by: ROOM }))]);
      await bob.receive(discoInfo('d1'));
      expect(features(bob.take()[0]!)).toEqual(expect.arrayContaining([NS_MAM, NS_SID]));

      const mamQuery = (id: string, queryid?: string) => x('iq', { type: 'set', id, to: ROOM }, x('query', { xmlns: NS_MAM, queryid }));
      await bob.receive(mamQuery('q1'));
      expect(bob.take()).toEqual([result('q1', B, ROOM, x('fin', { xmlns: NS_MAM, complete: 'true' }))]);
      expect(log.queried).toEqual([{ owner: ROOM, requester: B }]);
      await bob.receive(mamQuery('q2', 'bad'));
      expect(bob.take()).toEqual([x('iq', { type: 'error', id: 'q2', from: ROOM, to: B }, stanzaError('bad-request', 'modify', 'bad query'))]);
      // A public open room's archive is for anyone; a members-only one's is not.
      await carol.receive(mamQuery('q3'));
      expect(carol.take()).toEqual([result('q3', C, ROOM, x('fin', { xmlns: NS_MAM, complete: 'true' }))]);
      await configure(alice, { 'muc#roomconfig_membersonly': '1' });
      await carol.receive(mamQuery('q4'));
      expect(carol.take()).toEqual([x('iq', { type: 'error', id: 'q4', from: ROOM, to: C },
        stanzaError('forbidden', 'auth', 'Only occupants and members may search the archive of this room'))]);
      // Turning archiving off: no more stanza-ids, no more queries (171 tells the occupants).
      alice.take();
      await alice.receive(ownerSet('c2', submit({ 'muc#roomconfig_enablearchiving': '0' })));
      expect(norm(alice.take())).toEqual([result('c2', A), x('message', { from: ROOM, to: A, type: 'groupchat' }, x('x', { xmlns: NS_MUC_USER }, status(104, 171)))]);
      await alice.receive(mamQuery('q5'));
      expect(errorOf(alice.take())).toMatchObject({ condition: 'service-unavailable' });
    });

    it('works without an archive: no stanza-id, MAM queries are service-unavailable', async () => {
      const [alice] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(groupchat('plain', 'm1'));
      expect(alice.take()).toEqual([x('message', { from: occ('alice'), to: A, type: 'groupchat', id: 'm1' }, x('body', null, 'plain'))]);
      await alice.receive(x('iq', { type: 'set', id: 'q1', to: ROOM }, x('query', { xmlns: NS_MAM })));
      expect(alice.take()).toEqual([x('iq', { type: 'error', id: 'q1', from: ROOM, to: A }, stanzaError('service-unavailable', 'cancel', 'This room has no archive'))]);
    });
  });

  // ---- history --------------------------------------------------------------------

  describe('history', () => {
    async function roomWithHistory(n: number, fields: Record<string, string> = {}): Promise<[FakeSession, FakeSession]> {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', fields);
      for (let i = 1; i <= n; i++) await alice.receive(groupchat(`message ${i}`, `m${i}`));
      alice.take();
      return [alice, bob];
    }
    const bodies = (els: Element[]) => els.filter((e) => e.getChild('body')).map((e) => e.getChildText('body'));

    it('sends the kept history with delay stamps, up to the configured length', async () => {
      const [, bob] = await roomWithHistory(4, { 'muc#maxhistoryfetch': '3' });
      const got = await enter(bob, 'bob');
      expect(bodies(got)).toEqual(['message 2', 'message 3', 'message 4']);
      for (const m of got.filter((e) => e.getChild('body'))) {
        expect(m.attrs).toMatchObject({ from: occ('alice'), to: B, type: 'groupchat' });
        expect(m.getChild('delay', NS_DELAY)!.attrs.from).toBe(ROOM);
      }
    });

    it('honours maxstanzas, maxchars, seconds and since', async () => {
      const [, bob] = await roomWithHistory(5);
      expect(bodies(await enter(bob, 'bob', { history: { maxstanzas: '2' } }))).toEqual(['message 4', 'message 5']);
      await bob.receive(x('presence', { to: occ('bob'), type: 'unavailable' }));
      bob.take();
      expect(bodies(await enter(bob, 'bob', { history: { maxchars: '0' } }))).toEqual([]);
      await bob.receive(x('presence', { to: occ('bob'), type: 'unavailable' }));
      bob.take();
      expect(bodies(await enter(bob, 'bob', { history: { seconds: '3600' } }))).toHaveLength(5);
      await bob.receive(x('presence', { to: occ('bob'), type: 'unavailable' }));
      bob.take();
      expect(bodies(await enter(bob, 'bob', { history: { since: '2999-01-01T00:00:00Z' } }))).toEqual([]);
    });

    it('selects by each limit, counting whole stanzas for maxchars', () => {
      const mk = (i: number, at: number) => historyEntry(x('message', { from: occ('a'), type: 'groupchat', id: `m${i}` }, x('body', null, `body ${i}`)), at, ROOM);
      const h = [mk(1, 1000), mk(2, 2000), mk(3, 3000), mk(4, 4000)];
      const ids = (els: Element[]) => els.map((e) => e.attrs.id);
      expect(ids(selectHistory(h, {}, A, 5000))).toEqual(['m1', 'm2', 'm3', 'm4']);
      expect(ids(selectHistory(h, { maxstanzas: 1 }, A, 5000))).toEqual(['m4']);
      expect(ids(selectHistory(h, { seconds: 3 }, A, 5000))).toEqual(['m3', 'm4']);
      expect(ids(selectHistory(h, { seconds: 2 }, A, 5000))).toEqual(['m4']);
      expect(ids(selectHistory(h, { seconds: 0 }, A, 5000))).toEqual([]);
      expect(ids(selectHistory(h, { since: 2000 }, A, 5000))).toEqual(['m2', 'm3', 'm4']);
      const one = selectHistory(h, {}, A, 5000)[3]!.toString().length;
      expect(ids(selectHistory(h, { maxchars: one * 2 }, A, 5000))).toEqual(['m3', 'm4']);
      expect(ids(selectHistory(h, { maxchars: one * 2 - 1 }, A, 5000))).toEqual(['m4']);
      expect(ids(selectHistory(h, { maxchars: 10, maxstanzas: 3 }, A, 5000))).toEqual([]);
      expect(parseHistoryRequest(x('history', { maxchars: '-1', maxstanzas: 'x', seconds: '10', since: 'yesterday' }))).toEqual({ seconds: 10 });
      expect(parseHistoryRequest(x('history', { since: '1970-01-01T00:00:02Z' }))).toEqual({ since: 2000 });
    });

    it('keeps no history of messages with a no-store hint', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(x('message', { to: ROOM, type: 'groupchat', id: 'h1' }, x('body', null, 'secret'), x('no-store', { xmlns: 'urn:xmpp:hints' })));
      expect(bodies(await enter(bob, 'bob'))).toEqual([]);
    });
  });

  // ---- invitations ------------------------------------------------------------------

  describe('invitations (§7.8)', () => {
    it('mediates an invitation, with the password, and a decline', async () => {
      const [alice, bob] = await connectAll();
      await bob.receive(x('presence'));
      bob.take();
      await createRoom(alice, 'alice', { 'muc#roomconfig_roomsecret': 'cauldronburn' });
      await alice.receive(x('message', { to: ROOM, id: 'i1' }, x('x', { xmlns: NS_MUC_USER },
        x('invite', { to: 'bob@example.test' }, x('reason', null, 'Hey Bob, this is the place for all good witches!')))));
      expect(bob.take()).toEqual([x('message', { from: ROOM, to: 'bob@example.test', id: 'i1' }, x('x', { xmlns: NS_MUC_USER },
        x('invite', { from: A }, x('reason', null, 'Hey Bob, this is the place for all good witches!')),
        x('password', null, 'cauldronburn')))]);
      await bob.receive(x('message', { to: ROOM, id: 'd1' }, x('x', { xmlns: NS_MUC_USER },
        x('decline', { to: A }, x('reason', null, 'Too busy')))));
      expect(alice.take()).toEqual([x('message', { from: ROOM, to: A, id: 'd1' }, x('x', { xmlns: NS_MUC_USER },
        x('decline', { from: 'bob@example.test' }, x('reason', null, 'Too busy'))))]);
      // Declines are relayed only to inviters.
      await bob.receive(x('message', { to: ROOM, id: 'd2' }, x('x', { xmlns: NS_MUC_USER }, x('decline', { to: A }))));
      expect(alice.take()).toEqual([]);
    });

    it('adds the invitee to the members of a members-only room; only admins invite when occupants may not', async () => {
      const [alice, bob, carol] = await connectAll();
      await bob.receive(x('presence'));
      bob.take();
      await createRoom(alice, 'alice', { 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_allowinvites': '0' });
      await alice.receive(x('message', { to: ROOM, id: 'i0' }, x('x', { xmlns: NS_MUC_USER }, x('invite', { to: 'nobody@example.test' }))));
      expect(errorOf(alice.take())).toMatchObject({ id: 'i0', condition: 'item-not-found' });
      await alice.receive(x('message', { to: ROOM, id: 'i1' }, x('x', { xmlns: NS_MUC_USER }, x('invite', { to: 'bob@example.test' }))));
      expect(bob.take()).toHaveLength(1);
      expect((await enter(bob, 'bob'))[1]).toEqual(mp(occ('bob'), B, { affiliation: 'member', role: 'participant' }, [110]));
      await bob.receive(x('message', { to: ROOM, id: 'i2' }, x('x', { xmlns: NS_MUC_USER }, x('invite', { to: 'carol@example.test' }))));
      expect(bob.take()).toEqual([x('message', { type: 'error', id: 'i2', from: ROOM, to: B },
        stanzaError('forbidden', 'auth', 'Only admins and owners may invite to this room'))]);
      expect(carol.take()).toEqual([]);
      await carol.receive(x('message', { to: ROOM, id: 'i3' }, x('x', { xmlns: NS_MUC_USER }, x('invite', { to: 'dave@example.test' }))));
      expect(errorOf(carol.take())).toMatchObject({ condition: 'not-acceptable' });
    });
  });

  // ---- IQs to occupants -----------------------------------------------------------

  describe('IQs to occupant JIDs', () => {
    it('answers a self-ping itself (XEP-0410) and refuses one from a non-occupant', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await alice.receive(x('iq', { type: 'get', id: 'sp1', to: occ('alice') }, x('ping', { xmlns: NS_PING })));
      expect(alice.take()).toEqual([result('sp1', A, occ('alice'))]);
      await bob.receive(x('iq', { type: 'get', id: 'sp2', to: occ('bob') }, x('ping', { xmlns: NS_PING })));
      expect(bob.take()).toEqual([x('iq', { type: 'error', id: 'sp2', from: occ('bob'), to: B }, stanzaError('not-acceptable', 'cancel', 'You are not in this room'))]);
    });

    it('forwards other IQs to the occupant and the answer back, from occupant JIDs', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice);
      await bob.receive(x('iq', { type: 'get', id: 'v1', to: occ('alice') }, x('query', { xmlns: 'jabber:iq:version' })));
      const [forwarded] = alice.take();
      expect(forwarded).toEqual(x('iq', { type: 'get', id: forwarded!.attrs.id!, from: occ('bob'), to: A }, x('query', { xmlns: 'jabber:iq:version' })));
      expect(forwarded!.attrs.id).not.toBe('v1');
      await alice.receive(x('iq', { type: 'result', id: forwarded!.attrs.id, to: occ('bob') }, x('query', { xmlns: 'jabber:iq:version' }, x('name', null, 'witchcraft'))));
      expect(bob.take()).toEqual([x('iq', { type: 'result', id: 'v1', from: occ('alice'), to: B }, x('query', { xmlns: 'jabber:iq:version' }, x('name', null, 'witchcraft')))]);
      // A response from anyone else is not taken for it.
      await bob.receive(x('iq', { type: 'get', id: 'v2', to: occ('nobody') }, x('query', { xmlns: 'jabber:iq:version' })));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'item-not-found' });
    });
  });

  // ---- room discovery and destruction ------------------------------------------------

  describe('room disco#info and destruction', () => {
    it('describes the room with its features and the muc#roominfo form (§6.4)', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_roomname': 'A Dark Cave', 'muc#roomconfig_roomdesc': 'Witches welcome' });
      await alice.receive(x('message', { to: ROOM, type: 'groupchat' }, x('subject', null, 'Spells')));
      await bob.receive(discoInfo('d1'));
      const reply = bob.take()[0]!;
      const query = reply.getChild('query', NS_DISCO_INFO)!;
      expect(query.getChild('identity')).toEqual(x('identity', { category: 'conference', name: 'A Dark Cave', type: 'text' }));
      expect(features(reply)).toEqual([
        NS_MUC, 'http://jabber.org/protocol/muc#request', 'http://jabber.org/protocol/muc#self-ping-optimization',
        'http://jabber.org/protocol/muc#stable_id', NS_DISCO_INFO, 'muc_hidden', 'muc_open', 'muc_public', 'muc_semianonymous',
        'muc_temporary', 'muc_unmoderated', 'muc_unsecured', NS_PING,
      ].filter((f) => f !== 'muc_hidden').sort());
      const form = query.getChild('x', NS_DATA)!;
      expect(formField(form, 'FORM_TYPE')).toEqual(['http://jabber.org/protocol/muc#roominfo']);
      expect(formField(form, 'muc#roominfo_description')).toEqual(['Witches welcome']);
      expect(formField(form, 'muc#roominfo_subject')).toEqual(['Spells']);
      expect(formField(form, 'muc#roominfo_occupants')).toEqual(['1']);
      await configure(alice, {
        'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_publicroom': '0', 'muc#roomconfig_membersonly': '1',
        'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 's', 'muc#roomconfig_moderatedroom': '1',
        'muc#roomconfig_whois': 'anyone',
      });
      await bob.receive(discoInfo('d2'));
      expect(features(bob.take()[0]!).filter((f) => f.startsWith('muc_'))).toEqual([
        'muc_hidden', 'muc_membersonly', 'muc_moderated', 'muc_nonanonymous', 'muc_passwordprotected', 'muc_persistent',
      ]);
      await bob.receive(discoInfo('d3', ROOM, 'other'));
      expect(errorOf(bob.take())).toMatchObject({ condition: 'item-not-found' });
      await bob.receive(x('iq', { type: 'get', id: 'i1', to: ROOM }, x('query', { xmlns: NS_DISCO_ITEMS })));
      expect(bob.take()).toEqual([result('i1', B, ROOM, x('query', { xmlns: NS_DISCO_ITEMS }))]);
    });

    it('notifies configuration changes with 104 and 172/173', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice');
      await enter(bob, 'bob');
      takeAll(alice, bob);
      await configure(alice, { 'muc#roomconfig_whois': 'anyone' });
      expect(norm(bob.take())).toEqual([x('message', { from: ROOM, to: B, type: 'groupchat' }, x('x', { xmlns: NS_MUC_USER }, status(104, 172)))]);
      await configure(alice, { 'muc#roomconfig_whois': 'moderators' });
      expect(norm(bob.take())).toEqual([x('message', { from: ROOM, to: B, type: 'groupchat' }, x('x', { xmlns: NS_MUC_USER }, status(104, 173)))]);
    });

    it('destroys a room with a reason and an alternate venue (§10.9)', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_persistentroom': '1' });
      await enter(bob, 'bob');
      takeAll(alice, bob);
      await alice.receive(ownerSet('d1', x('destroy', { jid: `heath@${SVC}` }, x('reason', null, 'Macbeth doth come.'))));
      const gone = (from: string, to: string) => x('presence', { from, to, type: 'unavailable' }, x('x', { xmlns: NS_MUC_USER },
        x('item', { affiliation: 'none', role: 'none' }), x('destroy', { jid: `heath@${SVC}` }, x('reason', null, 'Macbeth doth come.'))));
      expect(alice.take()).toEqual([gone(occ('alice'), A), result('d1', A)]);
      expect(bob.take()).toEqual([gone(occ('bob'), B)]);
      expect(service.listRooms()).toEqual([]);
      expect(host.core.db.prepare('SELECT COUNT(*) FROM muc_room').pluck().get()).toBe(0);
    });
  });

  // ---- persistence --------------------------------------------------------------------

  describe('persistence', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'xmppd-muc-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('restores persistent rooms (configuration, affiliations, subject, history) after a restart', async () => {
      await host.close();
      const file = join(dir, 'xmppd.sqlite');
      host = await start({}, [], file);
      let [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', {
        'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_roomname': 'Kept', 'muc#maxhistoryfetch': '3',
      });
      await createRoom(alice, 'alice', {}, `temp@${SVC}`);
      await alice.receive(adminSet('m1', x('item', { affiliation: 'member', jid: 'bob@example.test', nick: 'bobby' })));
      await alice.receive(adminSet('b1', x('item', { affiliation: 'outcast', jid: 'carol@example.test' }, x('reason', null, 'no'))));
      await alice.receive(x('message', { to: ROOM, type: 'groupchat' }, x('subject', null, 'Still here')));
      for (let i = 1; i <= 4; i++) await alice.receive(groupchat(`kept ${i}`, `k${i}`));
      await host.close();

      host = await start({}, [], file);
      [alice, bob] = [await host.connect(A), await host.connect(B)];
      expect(service.listRooms()).toEqual([expect.objectContaining({
        jid: ROOM, name: 'Kept', persistent: true, membersOnly: true, occupants: 0, owners: ['alice@example.test'], subject: 'Still here',
      })]);
      const got = norm(await enter(bob, 'bobby'));
      expect(got[0]).toEqual(mp(occ('bobby'), B, { affiliation: 'member', role: 'participant' }, [110]));
      expect(got.filter((e) => e.getChild('body')).map((e) => e.getChildText('body'))).toEqual(['kept 2', 'kept 3', 'kept 4']);
      expect(got.pop()).toEqual(subjectMsg(B, 'Still here', occ('alice')));
      await alice.receive(adminGet('l1', { affiliation: 'outcast' }));
      expect(alice.take()).toEqual([result('l1', A, ROOM, x('query', { xmlns: NS_MUC_ADMIN },
        x('item', { affiliation: 'outcast', jid: 'carol@example.test' }, x('reason', null, 'no'))))]);
      // History written after the restart is trimmed to the room's length in the database too.
      await bob.receive(groupchat('after', 'a1'));
      expect(host.core.db.prepare('SELECT COUNT(*) FROM muc_history').pluck().get()).toBe(3);
      // Turning persistence off forgets the room in the database; it goes with its last occupant.
      await configure(alice, { 'muc#roomconfig_persistentroom': '0' });
      expect(host.core.db.prepare('SELECT COUNT(*) FROM muc_room').pluck().get()).toBe(0);
      await bob.receive(x('presence', { to: occ('bobby'), type: 'unavailable' }));
      expect(service.listRooms()).toEqual([]);
    });

    it('survives unloading and loading the module', async () => {
      const alice = await host.connect(A);
      await createRoom(alice, 'alice', { 'muc#roomconfig_persistentroom': '1' });
      await host.core.modules.unload('muc');
      await host.core.modules.load(muc, options);
      service = await grabService(host);
      expect(service.listRooms().map((r) => r.jid)).toEqual([ROOM]);
      await alice.receive(discoInfo('d1'));
      expect(features(alice.take()[0]!)).toContain('muc_persistent');
    });

    it('forgets the affiliations of a deleted account', async () => {
      const [alice, bob] = await connectAll();
      await createRoom(alice, 'alice', { 'muc#roomconfig_persistentroom': '1' });
      await alice.receive(adminSet('m1', x('item', { affiliation: 'member', jid: 'bob@example.test' })));
      await host.core.deleteUser('bob@example.test');
      expect(host.core.db.prepare("SELECT COUNT(*) FROM muc_affiliation WHERE jid = 'bob@example.test'").pluck().get()).toBe(0);
      await alice.receive(adminGet('l1', { affiliation: 'member' }));
      expect(alice.take().pop()).toEqual(result('l1', A, ROOM, x('query', { xmlns: NS_MUC_ADMIN })));
      expect(bob.closed).toBe(true);
    });
  });

  // ---- the CLI service -------------------------------------------------------------------

  describe('the muc service (CLI)', () => {
    it('creates, lists, shows occupants of and destroys rooms', async () => {
      expect(service.domains()).toEqual([SVC]);
      const created = await service.createRoom(ROOM, { name: 'Coven', membersOnly: true, owner: 'alice@example.test', password: 'pw' });
      expect(created).toEqual({
        jid: ROOM, name: 'Coven', description: '', subject: '', persistent: true, public: true, membersOnly: true, moderated: false,
        passwordProtected: true, nonAnonymous: false, locked: false, occupants: 0, maxUsers: 200, owners: ['alice@example.test'],
        createdAt: expect.stringMatching(/^\d{4}-/),
      });
      expect(host.core.db.prepare('SELECT COUNT(*) FROM muc_room').pluck().get()).toBe(1);
      await expect(service.createRoom(ROOM)).rejects.toThrow(new UserError(`room ${ROOM} already exists`));
      await expect(service.createRoom('room@example.test')).rejects.toThrow(UserError);
      await expect(service.createRoom('not a jid@@')).rejects.toThrow(UserError);
      await expect(service.createRoom(`x@${SVC}`, { maxUsers: 0 })).rejects.toThrow(UserError);
      await expect(service.createRoom(`x@${SVC}`, { owner: 'a@b/c' })).rejects.toThrow(UserError);

      const alice = await host.connect(A);
      await enter(alice, 'alice');
      expect(service.occupants(ROOM)).toEqual([{ nick: 'alice', jid: 'alice@example.test', sessions: [A], role: 'moderator', affiliation: 'owner' }]);
      expect(service.occupants(`none@${SVC}`)).toBeUndefined();
      expect(await service.destroyRoom(ROOM, 'Closing')).toBe(true);
      expect(alice.take()).toEqual([x('presence', { from: occ('alice'), to: A, type: 'unavailable' }, x('x', { xmlns: NS_MUC_USER },
        x('item', { affiliation: 'none', role: 'none' }), x('destroy', null, x('reason', null, 'Closing'))))]);
      expect(await service.destroyRoom(ROOM)).toBe(false);
      expect(service.listRooms()).toEqual([]);
    });
  });

  describe('stanzas to rooms that do not exist', () => {
    it('answers messages and IQs with item-not-found and ignores unavailable presence', async () => {
      const alice = await host.connect(A);
      await alice.receive(groupchat('hello?', 'm1'));
      expect(errorOf(alice.take())).toEqual({ name: 'message', from: ROOM, id: 'm1', condition: 'item-not-found', type: 'cancel' });
      await alice.receive(x('presence', { to: occ('alice'), type: 'unavailable' }));
      expect(alice.take()).toEqual([]);
    });
  });
});
