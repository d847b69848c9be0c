/**
 * A realistic client-to-server XMPP stream for the parser benchmark: a stream header, then
 * chat messages (body, chat states, receipts, origin-id, markers), presences with entity
 * capabilities and vCard avatar hashes, and roster iq results, with whitespace keepalives
 * in between. Deterministic (seeded), mostly ASCII with some accents, CJK and emoji.
 */

export const STREAM_HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " +
  "to='capulet.lit' from='romeo@montague.lit' version='1.0' xml:lang='en'>";
export const STREAM_FOOTER = '</stream:stream>';

/** xorshift32: reproducible corpora. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

const WORDS = [
  'hello', 'wherefore', 'art', 'thou', 'romeo', 'the', 'balcony', 'tonight', 'see', 'you', 'at', 'nine',
  'café', 'déjà', 'vu', 'naïve', 'Grüße', '你好', '世界', '😀', '👍', 'ok', 'sure', 'meeting', 'tomorrow',
  'link:', 'https://example.org/a?b=c&d=e', '<3', '"quoted"', "it's", 'R&D', 'x>y',
];

const CLIENTS = ['https://conversations.im', 'https://gajim.org', 'https://dino.im', 'http://psi-im.org'];
const GROUPS = ['Friends', 'Family', 'Work', 'Montagues', 'Capulets'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

function hex(r: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(r() * 16)];
  return s;
}

function b64(r: () => number, n: number): string {
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let s = '';
  for (let i = 0; i < n; i++) s += a[Math.floor(r() * 64)];
  return s;
}

function sentence(r: () => number): string {
  const n = 2 + Math.floor(r() * 25);
  const w: string[] = [];
  for (let i = 0; i < n; i++) w.push(WORDS[Math.floor(r() * WORDS.length)]!);
  return w.join(' ');
}

function jid(r: () => number): string {
  return 'user' + Math.floor(r() * 5000) + '@capulet.lit';
}

function message(r: () => number, i: number): string {
  const id = 'msg-' + i.toString(36) + '-' + hex(r, 6);
  let s =
    `<message to='${jid(r)}' from='romeo@montague.lit/orchard' type='chat' id='${id}' xml:lang='en'>` +
    `<body>${esc(sentence(r))}</body>` +
    `<active xmlns='http://jabber.org/protocol/chatstates'/>`;
  if (r() < 0.7) s += `<request xmlns='urn:xmpp:receipts'/>`;
  s += `<origin-id xmlns='urn:xmpp:sid:0' id='${hex(r, 8)}-${hex(r, 4)}-${hex(r, 4)}-${hex(r, 12)}'/>`;
  if (r() < 0.5) s += `<markable xmlns='urn:xmpp:chat-markers:0'/>`;
  return s + '</message>';
}

function presence(r: () => number, i: number): string {
  const show = ['away', 'chat', 'dnd', 'xa'][Math.floor(r() * 4)]!;
  return (
    `<presence id='p${i.toString(36)}'>` +
    `<show>${show}</show><status>${esc(sentence(r))}</status><priority>${Math.floor(r() * 50)}</priority>` +
    `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='${CLIENTS[Math.floor(r() * CLIENTS.length)]}' ver='${b64(r, 27)}='/>` +
    `<x xmlns='vcard-temp:x:update'><photo>${hex(r, 40)}</photo></x>` +
    `</presence>`
  );
}

function roster(r: () => number, i: number): string {
  const n = 3 + Math.floor(r() * 15);
  let s = `<iq type='result' id='roster-${i.toString(36)}' to='romeo@montague.lit/orchard'><query xmlns='jabber:iq:roster' ver='ver${i}'>`;
  for (let k = 0; k < n; k++) {
    const sub = ['both', 'to', 'from', 'none'][Math.floor(r() * 4)]!;
    s += `\n  <item jid='${jid(r)}' name='${esc(WORDS[Math.floor(r() * WORDS.length)]!)}' subscription='${sub}'>`;
    s += `<group>${GROUPS[Math.floor(r() * GROUPS.length)]}</group></item>`;
  }
  return s + '\n</query></iq>';
}

/** The stanzas (without header), and how many. */
export function makeStanzas(count: number, seed = 42): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const p = r();
    let st = p < 0.6 ? message(r, i) : p < 0.9 ? presence(r, i) : roster(r, i);
    if (r() < 0.05) st += '\n'; // whitespace keepalive
    out.push(st);
  }
  return out;
}

/** The whole stream as bytes, cut into chunks of `size` bytes regardless of token or character boundaries. */
export function chunked(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, Math.min(buf.length, i + size)));
  return out;
}
