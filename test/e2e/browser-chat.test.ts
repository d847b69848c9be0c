// End to end: Debian's chromium (driven by playwright-core) opens the built-in web chat page,
// logs in as alice through Converse.js's login form, and chats with bob, an @xmpp/client user
// on TCP, through the server. The page must work under its Content-Security-Policy and load
// nothing from anywhere but this server. A screenshot is saved to test-output/browser-chat.png.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server';
import { jsClient, type JsClient, type XmlEl } from '../helpers/xmpp-js';

/** Debian's build (apt-get install chromium); playwright cannot download browsers here. */
const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) {
  // CI installs chromium (.ci/run); there, a missing browser is a failure, not a skip.
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  console.warn(`browser chat tests skipped: ${CHROMIUM} is missing; install Debian's chromium (apt-get install chromium) to run them`);
}

/** The machine may have no network beyond loopback: nothing in the browser may try to reach out. */
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const OUTPUT_DIR = join(__dirname, '..', '..', 'test-output');
const UI_TIMEOUT = 30_000;

const USERS = { 'alice@localhost': 'pw-alice', 'bob@localhost': 'pw-bob', 'carol@localhost': 'pw-carol' };
const isPresence = (from: string, type?: string) => (el: XmlEl) =>
  el.name === 'presence' && String(el.attrs.from).startsWith(from) && el.attrs.type === type;

/** What a page did that it should not have: requests off this server, CSP violations, script errors. */
interface PageWatch {
  foreignRequests: string[];
  cspViolations: string[];
  pageErrors: string[];
}

(available ? describe : describe.skip)('the web chat page in a real browser (Converse.js in chromium)', () => {
  let t: TestServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const clients: JsClient[] = [];

  const tcpClient = async (username: 'alice' | 'bob' | 'carol', resource: string) => {
    const c = await jsClient({ port: t.port, username, password: `pw-${username}`, resource });
    clients.push(c);
    return c;
  };

  /** Mutual subscription between two accounts, done over TCP before the browser logs in. */
  const befriend = async (a: JsClient, b: JsClient) => {
    const { xml } = a;
    for (const c of [a, b]) {
      await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
      await c.send(xml('presence'));
    }
    const aBare = a.jid.split('/')[0]!;
    const bBare = b.jid.split('/')[0]!;
    await a.send(xml('presence', { to: bBare, type: 'subscribe' }));
    await b.waitFor(isPresence(aBare, 'subscribe'), 10_000, 'subscription request');
    await b.send(xml('presence', { to: aBare, type: 'subscribed' }));
    await a.waitFor(isPresence(bBare, 'subscribed'), 10_000, 'subscription approval');
    await b.send(xml('presence', { to: aBare, type: 'subscribe' }));
    await a.waitFor(isPresence(bBare, 'subscribe'), 10_000, 'subscription request back');
    await a.send(xml('presence', { to: bBare, type: 'subscribed' }));
    await b.waitFor(isPresence(aBare, 'subscribed'), 10_000, 'subscription approval back');
  };

  const openPage = async (options: { ignoreHTTPSErrors?: boolean } = {}): Promise<{ page: Page; watch: PageWatch }> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', ...options });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    const watch: PageWatch = { foreignRequests: [], cspViolations: [], pageErrors: [] };
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (!['localhost', '127.0.0.1'].includes(url.hostname) && url.protocol !== 'data:' && url.protocol !== 'blob:') watch.foreignRequests.push(r.url());
    });
    page.on('pageerror', (e) => watch.pageErrors.push(e.message));
    await page.exposeFunction('__reportCspViolation', (v: string) => { watch.cspViolations.push(v); });
    // Runs in the page (as text: the tests are compiled without the DOM types).
    await page.addInitScript(`document.addEventListener('securitypolicyviolation',
      (e) => window.__reportCspViolation(e.violatedDirective + ' ' + e.blockedURI));`);
    return { page, watch };
  };

  /** Converse's login form: username only (default_domain fills in the domain), then the roster. */
  const logIn = async (page: Page, username: string, password: string) => {
    await page.locator('converse-login-form input[name="jid"]').fill(username);
    await page.locator('converse-login-form input[name="password"]').fill(password);
    await page.locator('converse-login-form button[type="submit"]').click();
    // Logged in: the controlbox shows the user's own profile.
    await page.locator('converse-user-profile .username').filter({ hasText: `${username}@localhost` }).waitFor();
  };

  beforeAll(async () => {
    t = await startTestServer({}, USERS);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
  }, 90_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    for (const c of clients) await c.stop();
    await t?.stop();
  }, 60_000);

  it('logs in through the page and chats both ways with a TCP client', async () => {
    const bob = await tcpClient('bob', 'desk');
    const aliceSetup = await tcpClient('alice', 'setup');
    await befriend(aliceSetup, bob);
    await aliceSetup.stop();
    const { xml } = bob;

    const { page, watch } = await openPage();
    const response = await page.goto(`http://localhost:${t.httpPort}/chat`);
    expect(response?.status()).toBe(200);
    await logIn(page, 'alice', 'pw-alice');

    // Bob is in the roster and online; opening his entry opens a chat.
    const contact = page.locator('converse-roster li.current-xmpp-contact[data-status="online"] a.open-chat[data-jid="bob@localhost"]');
    await contact.click();
    const chat = page.locator('converse-chat[jid="bob@localhost"]');
    const textarea = chat.locator('textarea.chat-textarea');
    await textarea.waitFor();

    // Alice → Bob, typed into Converse and sent with Enter.
    const outgoing = `Hello Bob, from Converse in chromium (${Date.now()})`;
    await textarea.fill(outgoing);
    await textarea.press('Enter');
    const atBob = await bob.waitFor((el) => el.name === 'message' && el.getChildText('body') === outgoing, UI_TIMEOUT, 'the message from the browser');
    expect(atBob.attrs.type).toBe('chat');
    expect(String(atBob.attrs.from)).toMatch(/^alice@localhost\//);
    await chat.locator('.chat-msg__text', { hasText: outgoing }).waitFor();

    // Bob → Alice: the reply shows up in the open chat.
    const reply = `Hi Alice, Bob here over TCP (${Date.now()})`;
    await bob.send(xml('message', { to: String(atBob.attrs.from), type: 'chat' }, xml('body', {}, reply)));
    const shown = chat.locator('converse-chat-message .chat-msg__text', { hasText: reply });
    await shown.waitFor();
    expect(await shown.textContent()).toContain(reply);
    // Both messages, in order.
    const texts = await chat.locator('converse-chat-message .chat-msg__text').allTextContents();
    const mine = texts.findIndex((s) => s.includes(outgoing));
    const theirs = texts.findIndex((s) => s.includes(reply));
    expect(mine).toBeGreaterThanOrEqual(0);
    expect(theirs).toBeGreaterThan(mine);

    mkdirSync(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: join(OUTPUT_DIR, 'browser-chat.png') });

    expect(watch.foreignRequests).toEqual([]);
    expect(watch.cspViolations).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
  }, 120_000);

  it('works over HTTPS with wss:// to the same host and port', async () => {
    const { page, watch } = await openPage({ ignoreHTTPSErrors: true });
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`https://localhost:${t.httpsPort}/chat`);
    await logIn(page, 'carol', 'pw-carol');
    expect(sockets).toEqual([`wss://localhost:${t.httpsPort}/xmpp-websocket`]);
    expect(watch.foreignRequests).toEqual([]);
    expect(watch.cspViolations).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
  }, 120_000);
});
