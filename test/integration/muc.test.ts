// Multi-user chat (XEP-0045) end to end with @xmpp/client over STARTTLS: create and configure a
// members-only persistent room, invite, chat, restart the server on the same data, rejoin and
// get the history; and with slixmpp's XEP-0045 plugin as the room owner.
import { startTestServer, type TestServer } from '../helpers/server';
import { jsClient, type JsClient, type XmlEl } from '../helpers/xmpp-js';
import { SlixmppScript, slixmppAvailable } from '../helpers/slixmpp';

const SVC = 'conference.localhost';
const ROOM = `team@${SVC}`;
const NS_MUC = 'http://jabber.org/protocol/muc';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_MUC_OWNER = 'http://jabber.org/protocol/muc#owner';

const codes = (el: XmlEl): string[] => (el.getChild('x', NS_MUC_USER)?.getChildren('status') ?? []).map((s: XmlEl) => s.attrs.code);
const isSelfPresence = (nick: string) => (el: XmlEl) =>
  el.name === 'presence' && el.attrs.from === `${ROOM}/${nick}` && el.attrs.type === undefined && codes(el).includes('110');
const isBody = (body: string) => (el: XmlEl) => el.name === 'message' && el.getChildText('body') === body;

describe('multi-user chat between real clients', () => {
  let t: TestServer;
  const clients: JsClient[] = [];
  const users = { 'alice@localhost': 'pw-alice', 'bob@localhost': 'pw-bob' };
  const login = async (username: string, resource: string) => {
    const c = await jsClient({ port: t.port, username, password: 'pw-' + username, resource });
    clients.push(c);
    await c.send(c.xml('presence'));
    return c;
  };

  beforeAll(async () => {
    t = await startTestServer({}, users);
  });
  afterAll(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  it('creates a members-only room, invites, chats, and keeps room and history across a restart', async () => {
    let alice = await login('alice', 'desk');
    let bob = await login('bob', 'phone');
    const { xml } = alice;

    // The server lists its MUC service.
    const items = await alice.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    expect(items.getChild('query').getChildren('item').map((i: XmlEl) => i.attrs.jid)).toContain(SVC);

    // Create: the room is locked (201) until configured.
    await alice.send(xml('presence', { to: `${ROOM}/alice` }, xml('x', { xmlns: NS_MUC })));
    const created = await alice.waitFor(isSelfPresence('alice'), 5000, 'self-presence');
    // 170: the room is archived, when the server has a message archive (modules/mam).
    const archived = t.server.core.modules.has('mam');
    expect(codes(created)).toEqual(archived ? ['110', '170', '201'] : ['110', '201']);
    expect(created.getChild('x', NS_MUC_USER).getChild('item').attrs).toMatchObject({ affiliation: 'owner', role: 'moderator' });

    const formIq = await alice.iq(xml('iq', { type: 'get', to: ROOM }, xml('query', { xmlns: NS_MUC_OWNER })));
    const form = formIq.getChild('query', NS_MUC_OWNER).getChild('x', 'jabber:x:data');
    expect(form.attrs.type).toBe('form');
    const field = (v: string, value: string) => xml('field', { var: v }, xml('value', {}, value));
    await alice.iq(xml('iq', { type: 'set', to: ROOM }, xml('query', { xmlns: NS_MUC_OWNER },
      xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
        field('FORM_TYPE', 'http://jabber.org/protocol/muc#roomconfig'),
        field('muc#roomconfig_roomname', 'Team'),
        field('muc#roomconfig_persistentroom', '1'),
        field('muc#roomconfig_membersonly', '1')))));

    // Bob is not a member yet.
    await bob.send(xml('presence', { to: `${ROOM}/bob`, id: 'j1' }, xml('x', { xmlns: NS_MUC })));
    const refused = await bob.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.type === 'error', 5000, 'refusal');
    expect(refused.getChild('error').getChild('registration-required')).toBeDefined();

    // Alice invites him (which makes him a member); he accepts.
    await alice.send(xml('message', { to: ROOM }, xml('x', { xmlns: NS_MUC_USER }, xml('invite', { to: 'bob@localhost' }, xml('reason', {}, 'Join us')))));
    const invitation = await bob.waitFor((el: XmlEl) => el.name === 'message' && el.getChild('x', NS_MUC_USER)?.getChild('invite') !== undefined, 5000, 'invitation');
    expect(invitation.attrs.from).toBe(ROOM);
    expect(invitation.getChild('x', NS_MUC_USER).getChild('invite').attrs.from).toBe('alice@localhost/desk');
    await bob.send(xml('presence', { to: `${ROOM}/bob` }, xml('x', { xmlns: NS_MUC })));
    const joined = await bob.waitFor(isSelfPresence('bob'), 5000, "bob's self-presence");
    expect(joined.getChild('x', NS_MUC_USER).getChild('item').attrs).toMatchObject({ affiliation: 'member', role: 'participant' });
    await bob.waitFor((el: XmlEl) => el.name === 'message' && el.getChild('subject') !== undefined, 5000, 'subject');
    await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.from === `${ROOM}/bob`, 5000, "bob's arrival");

    // Chat.
    await alice.send(xml('message', { to: ROOM, type: 'groupchat', id: 'g1' }, xml('body', {}, 'Welcome, Bob')));
    const got = await bob.waitFor(isBody('Welcome, Bob'), 5000, 'groupchat');
    expect(got.attrs).toMatchObject({ from: `${ROOM}/alice`, type: 'groupchat', id: 'g1' });
    await bob.send(xml('message', { to: ROOM, type: 'groupchat', id: 'g2' }, xml('body', {}, 'Thanks, Alice')));
    await alice.waitFor(isBody('Thanks, Alice'), 5000, "bob's reply");

    // Restart on the same data folder.
    await alice.stop();
    await bob.stop();
    await t.stop({ keepData: true });
    t = await startTestServer({}, users, t.dataDir);
    alice = await login('alice', 'desk');
    bob = await login('bob', 'phone');

    // The room is still there (public rooms are listed), with bob still a member; he gets the history.
    const rooms = await bob.iq(xml('iq', { type: 'get', to: SVC }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    expect(rooms.getChild('query').getChildren('item').map((i: XmlEl) => [i.attrs.jid, i.attrs.name])).toEqual([[ROOM, 'Team']]);
    await bob.send(xml('presence', { to: `${ROOM}/bob` }, xml('x', { xmlns: NS_MUC }, xml('history', { maxstanzas: '10' }))));
    const again = await bob.waitFor(isSelfPresence('bob'), 5000, "bob's self-presence after the restart");
    expect(again.getChild('x', NS_MUC_USER).getChild('item').attrs.affiliation).toBe('member');
    const first = await bob.waitFor(isBody('Welcome, Bob'), 5000, 'history 1');
    const second = await bob.waitFor(isBody('Thanks, Alice'), 5000, 'history 2');
    for (const m of [first, second]) {
      expect(m.getChild('delay', 'urn:xmpp:delay').attrs.from).toBe(ROOM);
      expect(m.getChild('delay', 'urn:xmpp:delay').attrs.stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }
    expect(first.attrs.from).toBe(`${ROOM}/alice`);
    expect(second.attrs.from).toBe(`${ROOM}/bob`);

    if (archived) {
      // The room's archive (XEP-0313 through modules/mam): the same messages, with the ids they were broadcast with.
      expect(first.getChild('stanza-id', 'urn:xmpp:sid:0').attrs.by).toBe(ROOM);
      const fin = await bob.iq(xml('iq', { type: 'set', to: ROOM }, xml('query', { xmlns: 'urn:xmpp:mam:2', queryid: 'q1' })));
      expect(fin.getChild('fin', 'urn:xmpp:mam:2')).toBeDefined();
      const results = bob.inbox.filter((el: XmlEl) => el.name === 'message' && el.getChild('result', 'urn:xmpp:mam:2')?.attrs.queryid === 'q1');
      const archivedBodies = results.map((el: XmlEl) => el.getChild('result', 'urn:xmpp:mam:2').getChild('forwarded', 'urn:xmpp:forward:0').getChild('message').getChildText('body'));
      expect(archivedBodies).toEqual(['Welcome, Bob', 'Thanks, Alice']);
      expect(results.map((el: XmlEl) => el.attrs.from)).toEqual([ROOM, ROOM]);
      expect(results[0].getChild('result', 'urn:xmpp:mam:2').attrs.id).toBe(first.getChild('stanza-id', 'urn:xmpp:sid:0').attrs.id);
    }

    // Self-ping (XEP-0410) says bob is joined; alice (not joined) is told she is not.
    await bob.iq(xml('iq', { type: 'get', to: `${ROOM}/bob` }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await expect(alice.iq(xml('iq', { type: 'get', to: `${ROOM}/alice` }, xml('ping', { xmlns: 'urn:xmpp:ping' })))).rejects.toThrow(/not-acceptable/);
  });
});

// ---- slixmpp (Debian's python3-slixmpp) as the room owner --------------------------------

const slixmppOk = slixmppAvailable();

/** test/interop/slixmpp_muc.py: creates, configures and runs a room as its owner. */
class SlixOwner extends SlixmppScript {
  constructor(args: string[]) {
    super('slixmpp_muc.py', args);
  }
}

(slixmppOk ? describe : describe.skip)('multi-user chat with slixmpp (xep_0045) as the room owner', () => {
  let t: TestServer;
  let owner: SlixOwner | undefined;
  let alice: JsClient | undefined;
  const PYROOM = `interop@${SVC}`;
  beforeAll(async () => {
    t = await startTestServer({}, { 'alice@localhost': 'pw-alice', 'owner@localhost': 'pw-owner' });
  });
  afterAll(async () => {
    owner?.kill();
    await alice?.stop();
    await t.stop();
  });

  it('lets slixmpp create, configure and run a room that an @xmpp/client user joins', async () => {
    alice = await jsClient({ port: t.port, username: 'alice', password: 'pw-alice', resource: 'web' });
    const { xml } = alice;
    await alice.send(xml('presence'));
    owner = new SlixOwner([String(t.port), 'owner@localhost/py', 'pw-owner', PYROOM, 'alice@localhost']);

    const joined = await owner.waitFor((e) => e.event === 'joined', 'room creation');
    const logged = t.server.core.modules.has('mam') ? [170] : [];
    expect(joined).toMatchObject({ codes: [110, ...logged, 201], affiliation: 'owner', role: 'moderator' });
    const form = await owner.waitFor((e) => e.event === 'form', 'configuration form');
    expect(form.fields).toEqual(expect.arrayContaining(['FORM_TYPE', 'muc#roomconfig_roomname', 'muc#roomconfig_whois', 'muc#roomconfig_persistentroom']));
    const configured = await owner.waitFor((e) => e.event === 'configured', 'configuration');
    expect(configured.name).toBe('Interop');
    expect(configured.features).toEqual(expect.arrayContaining(['http://jabber.org/protocol/muc', 'muc_nonanonymous', 'muc_persistent', 'muc_public']));

    // The invitation reaches alice, who enters and sees the owner (with his JID: non-anonymous) and the subject.
    const invitation = await alice.waitFor((el: XmlEl) => el.name === 'message' && el.getChild('x', NS_MUC_USER)?.getChild('invite') !== undefined, 10_000, 'invitation');
    expect(invitation.getChild('x', NS_MUC_USER).getChild('invite').attrs.from).toBe('owner@localhost/py');
    expect(invitation.getChild('x', NS_MUC_USER).getChild('invite').getChildText('reason')).toBe('Come and test');
    await alice.send(xml('presence', { to: `${PYROOM}/alice` }, xml('x', { xmlns: NS_MUC })));
    const ownerPresence = await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.from === `${PYROOM}/py`, 5000, "the owner's presence");
    expect(ownerPresence.getChild('x', NS_MUC_USER).getChild('item').attrs).toMatchObject({ affiliation: 'owner', role: 'moderator', jid: 'owner@localhost/py' });
    const subject = await alice.waitFor((el: XmlEl) => el.name === 'message' && el.getChild('subject') !== undefined, 5000, 'subject');
    expect(subject.attrs.from).toBe(`${PYROOM}/py`);
    expect(subject.getChildText('subject')).toBe('Interop testing');
    const seen = await owner.waitFor((e) => e.event === 'presence' && e.nick === 'alice', "alice's arrival");
    expect(seen).toMatchObject({ jid: 'alice@localhost/web', role: 'participant' });

    // Chat both ways.
    await alice.send(xml('message', { to: PYROOM, type: 'groupchat', id: 'hello-1' }, xml('body', {}, 'hello from xmpp.js')));
    expect(await owner.waitFor((e) => e.event === 'groupchat', 'groupchat')).toMatchObject({ nick: 'alice', body: 'hello from xmpp.js', id: 'hello-1' });
    const echo = await alice.waitFor((el: XmlEl) => el.name === 'message' && el.getChildText('body') === 'echo: hello from xmpp.js', 5000, 'echo');
    expect(echo.attrs.from).toBe(`${PYROOM}/py`);

    // Kick: alice gets 307 with the reason.
    await alice.send(xml('message', { to: PYROOM, type: 'groupchat' }, xml('body', {}, 'kick me')));
    const kicked = await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === `${PYROOM}/alice`, 5000, 'kick');
    expect(codes(kicked)).toEqual(['110', '307']);
    expect(kicked.getChild('x', NS_MUC_USER).getChild('item').getChildText('reason')).toBe('as asked');
    await owner.waitFor((e) => e.event === 'kicked', 'kick done');

    // Back in; "quit" makes the owner list the owners and destroy the room.
    await alice.send(xml('presence', { to: `${PYROOM}/alice` }, xml('x', { xmlns: NS_MUC }, xml('history', { maxstanzas: '0' }))));
    await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.from === `${PYROOM}/alice` && codes(el).includes('110') && el.attrs.type === undefined, 5000, 're-entry');
    await alice.send(xml('message', { to: PYROOM, type: 'groupchat' }, xml('body', {}, 'quit')));
    expect((await owner.waitFor((e) => e.event === 'owners', 'owner list')).jids).toEqual(['owner@localhost']);
    const destroyed = await alice.waitFor((el: XmlEl) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.getChild('x', NS_MUC_USER)?.getChild('destroy') !== undefined, 5000, 'destruction');
    expect(destroyed.getChild('x', NS_MUC_USER).getChild('destroy').getChildText('reason')).toBe('done');
    await owner.waitFor((e) => e.event === 'disconnected', 'disconnect');
  });
});
