// Authorization over real sockets with two accounts: alice must not read or change bob's data,
// speak as bob, or become bob; MUC non-owners must not reconfigure a room.
import { startTestServer, type TestServer } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';

const PLAIN = { host: '127.0.0.1', port: 0, tlsPort: 0, requireTls: false };

/** Sends an IQ and returns the reply (the whole <iq>…</iq> or self-closed <iq/>). */
async function iq(c: RawClient, id: string, attrs: string, payload: string): Promise<string> {
  c.send(`<iq id='${id}' ${attrs}>${payload}</iq>`);
  const re = new RegExp(`<iq (?=[^>]*id="${id}")[^>]*?(?:/>|>.*?</iq>)`, 's');
  return (await c.waitFor(re))[0];
}

function isError(reply: string, condition?: string): void {
  expect(reply).toMatch(/type="error"/);
  if (condition) expect(reply).toContain(`<${condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>`);
}

describe('authorization between accounts', () => {
  let t: TestServer;
  let alice: RawClient;
  let bob: RawClient;

  beforeAll(async () => {
    t = await startTestServer({ c2s: PLAIN }, { 'alice@localhost': 'wonderland', 'bob@localhost': 'builder' });
    bob = await RawClient.connect(t.port);
    await bob.login('bob', 'builder', 'desk');
    alice = await RawClient.connect(t.port);
    await alice.login('alice', 'wonderland', 'phone');
    // Bob's own data, which alice will go after.
    expect(await iq(bob, 'r1', "type='set'", "<query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Carol'/></query>")).toMatch(/type="result"/);
    expect(await iq(bob, 'v1', "type='set'", "<vCard xmlns='vcard-temp'><FN>Bob Builder</FN></vCard>")).toMatch(/type="result"/);
    expect(await iq(bob, 'p1', "type='set'", "<query xmlns='jabber:iq:private'><secret xmlns='urn:example:secret'>bob-only</secret></query>")).toMatch(/type="result"/);
    expect(await iq(bob, 'b1', "type='set'", "<block xmlns='urn:xmpp:blocking'><item jid='mallory@localhost'/></block>")).toMatch(/type="result"/);
  });
  afterAll(async () => {
    alice.close();
    bob.close();
    await t.stop();
  });

  it("cannot read or change another user's roster", async () => {
    isError(await iq(alice, 'ar1', "type='get' to='bob@localhost'", "<query xmlns='jabber:iq:roster'/>"));
    isError(await iq(alice, 'ar2', "type='set' to='bob@localhost'", "<query xmlns='jabber:iq:roster'><item jid='mallory@localhost'/></query>"));
    const roster = await iq(bob, 'r2', "type='get'", "<query xmlns='jabber:iq:roster'/>");
    expect(roster).toContain('carol@localhost');
    expect(roster).not.toContain('mallory@localhost');
  });

  it("cannot set another user's vCard (reading a vCard is public)", async () => {
    isError(await iq(alice, 'av1', "type='set' to='bob@localhost'", "<vCard xmlns='vcard-temp'><FN>Pwned</FN></vCard>"));
    const card = await iq(bob, 'v2', "type='get'", "<vCard xmlns='vcard-temp'/>");
    expect(card).toContain('Bob Builder');
    expect(card).not.toContain('Pwned');
  });

  it("cannot read or write another user's private storage", async () => {
    isError(await iq(alice, 'ap1', "type='get' to='bob@localhost'", "<query xmlns='jabber:iq:private'><secret xmlns='urn:example:secret'/></query>"));
    isError(await iq(alice, 'ap2', "type='set' to='bob@localhost'", "<query xmlns='jabber:iq:private'><secret xmlns='urn:example:secret'>pwned</secret></query>"));
    // Alice's own private storage is hers: no leak from bob's.
    const own = await iq(alice, 'ap3', "type='get'", "<query xmlns='jabber:iq:private'><secret xmlns='urn:example:secret'/></query>");
    expect(own).not.toContain('bob-only');
    expect(await iq(bob, 'p2', "type='get'", "<query xmlns='jabber:iq:private'><secret xmlns='urn:example:secret'/></query>")).toContain('bob-only');
  });

  it("cannot read or change another user's blocklist", async () => {
    isError(await iq(alice, 'ab1', "type='get' to='bob@localhost'", "<blocklist xmlns='urn:xmpp:blocking'/>"));
    isError(await iq(alice, 'ab2', "type='set' to='bob@localhost'", "<unblock xmlns='urn:xmpp:blocking'/>"));
    expect(await iq(bob, 'b2', "type='get'", "<blocklist xmlns='urn:xmpp:blocking'/>")).toContain('mallory@localhost');
  });

  it("cannot query another user's message archive", async () => {
    // Something in bob's archive first.
    bob.send("<message to='carol@localhost' type='chat' id='arch1'><body>private words</body></message>");
    await new Promise((r) => setTimeout(r, 100));
    const reply = await iq(alice, 'am1', "type='set' to='bob@localhost'", "<query xmlns='urn:xmpp:mam:2' queryid='q1'/>");
    isError(reply);
    expect(alice.text).not.toContain('private words');
  });

  it('cannot send as another JID (invalid-from) and stays unable to after a fresh login', async () => {
    const mallory = await RawClient.connect(t.port);
    await mallory.login('alice', 'wonderland', 'spoof');
    mallory.send("<message from='bob@localhost' to='carol@localhost' type='chat'><body>from bob, honest</body></message>");
    await mallory.waitFor(/<invalid-from xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await mallory.waitClosed();
  });

  it("cannot become bob: bind stays within the authenticated account, and a SASL authzid for bob is refused", async () => {
    const c = await RawClient.connect(t.port);
    await c.authenticate('alice', 'wonderland');
    c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>desk</resource><jid>bob@localhost/desk</jid></bind></iq>");
    const jid = (await c.waitFor(/<jid>([^<]+)<\/jid>/))[1];
    expect(jid).toBe('alice@localhost/desk');
    c.close();
    // Bob's session is untouched.
    expect(t.server.core.sessions.ofAccount('bob@localhost').map((s) => s.jid.toString())).toContain('bob@localhost/desk');

    const z = await RawClient.connect(t.port);
    z.open();
    await z.waitFor(/<\/stream:features>/);
    z.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('bob@localhost\0alice\0wonderland').toString('base64')}</auth>`);
    await z.waitFor(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><(invalid-authzid|not-authorized)\/>/);
    expect(z.text).not.toContain('<success');
    z.close();
  });

  it("gets nothing of another user's offline queue", async () => {
    // A message for bob while none of his resources is online is stored for him, not for alice.
    const t2 = await startTestServer({ c2s: PLAIN }, { 'alice@localhost': 'wonderland', 'bob@localhost': 'builder' });
    try {
      const a = await RawClient.connect(t2.port);
      await a.login('alice', 'wonderland', 'x');
      a.send("<message to='bob@localhost' type='chat' id='for-bob'><body>for bob only</body></message>");
      await new Promise((r) => setTimeout(r, 100));
      a.close();
      const a2 = await RawClient.connect(t2.port);
      await a2.login('alice', 'wonderland', 'y');
      a2.send('<presence/>');
      await new Promise((r) => setTimeout(r, 300));
      expect(a2.text).not.toContain('for bob only');
      a2.close();
      const b = await RawClient.connect(t2.port);
      await b.login('bob', 'builder', 'z');
      b.send('<presence/>');
      await b.waitFor(/for bob only/);
      b.close();
    } finally {
      await t2.stop();
    }
  });
});

describe('MUC authorization', () => {
  it('lets only owners change room configuration and affiliations', async () => {
    const t = await startTestServer({ c2s: PLAIN }, { 'alice@localhost': 'wonderland', 'bob@localhost': 'builder' });
    const room = 'den@conference.localhost';
    try {
      const alice = await RawClient.connect(t.port);
      await alice.login('alice', 'wonderland', 'owner');
      alice.send(`<presence to='${room}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
      await alice.waitFor(/<status code="110"\/>/);
      // Instant room (XEP-0045 §10.1.2).
      expect(await iq(alice, 'inst', `type='set' to='${room}'`, "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>")).toMatch(/type="result"/);
      const bob = await RawClient.connect(t.port);
      await bob.login('bob', 'builder', 'guest');
      bob.send(`<presence to='${room}/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
      await bob.waitFor(/<status code="110"\/>/);
      isError(await iq(bob, 'cfg1', `type='get' to='${room}'`, "<query xmlns='http://jabber.org/protocol/muc#owner'/>"), 'forbidden');
      isError(await iq(bob, 'cfg2', `type='set' to='${room}'`,
        "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_roomname'><value>pwned</value></field></x></query>"), 'forbidden');
      isError(await iq(bob, 'aff1', `type='set' to='${room}'`, "<query xmlns='http://jabber.org/protocol/muc#admin'><item jid='bob@localhost' affiliation='owner'/></query>"), 'forbidden');
      isError(await iq(bob, 'aff2', `type='set' to='${room}'`, "<query xmlns='http://jabber.org/protocol/muc#admin'><item jid='alice@localhost' affiliation='outcast'/></query>"), 'forbidden');
      isError(await iq(bob, 'destroy', `type='set' to='${room}'`, "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query>"), 'forbidden');
      // Alice is still the owner and bob still a plain member of the room.
      const owners = await iq(alice, 'own', `type='get' to='${room}'`, "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner'/></query>");
      expect(owners).toContain('alice@localhost');
      expect(owners).not.toContain('bob@localhost');
      alice.close();
      bob.close();
    } finally {
      await t.stop();
    }
  });
});
