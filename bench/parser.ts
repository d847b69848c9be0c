/**
 * Parser benchmark: saxes, sax (strict) and ltx versus the hand-written StreamParser.
 *
 *   npx tsc -p . && node dist/bench/parser.js [--stanzas 100000] [--runs 5] [--chunk 1400] [--ascii]
 *
 * (a) Throughput: a realistic client stream (bench/parser-corpus.ts) cut into chunks that
 *     split tokens and UTF-8 sequences at arbitrary points, parsed into stanza Elements
 *     (every contender drives the same tree builder; libraries that take strings get a
 *     fatal streaming TextDecoder in front, which is what the server would need).
 * (b) Correctness on RFC 6120 restricted XML: whether each rejects a construct itself
 *     ("rejects"), reports it through an event we could reject on ("hook"), or lets it
 *     through ("MISSED"); and whether it accepts what it must ("ok"/"WRONG").
 */
import { performance } from 'node:perf_hooks';
import { isUtf8 } from 'node:buffer';
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';
import * as sax from 'sax';
import { Element, type Attrs } from '../src/xml/element';
import { StreamParser } from '../src/xml/stream-parser';
import { STREAM_FOOTER, STREAM_HEADER, chunked, makeStanzas } from './parser-corpus';

interface Sink {
  element(el: Element): void;
  error(how: 'rejects' | 'hook', msg: string): void;
}

interface Instance {
  write(chunk: Buffer): void;
  end(): void;
}

interface Driver {
  name: string;
  make(sink: Sink): Instance;
}

class HookError extends Error {}

/** Builds stanza Elements from SAX-style events (shared by the library drivers). */
class Builder {
  private depth = 0;
  private readonly stack: Element[] = [];
  private readonly uris: (string | undefined)[] = [];
  constructor(private readonly sink: Sink, private readonly checkNames = false) {}

  open(local: string, uri: string | undefined, attrs: Attrs): void {
    const d = this.depth++;
    if (d === 0) return; // stream root
    const el = new Element(local, attrs, []);
    if (uri !== undefined && (d === 1 || uri !== this.uris[d - 2])) attrs.xmlns = uri;
    if (d > 1) this.stack[d - 2]!.children.push(el);
    this.stack[d - 1] = el;
    this.uris[d - 1] = uri;
  }

  text(t: string): void {
    if (this.depth < 2) {
      if (/[^ \t\r\n]/.test(t)) throw new HookError('text between stanzas');
      return;
    }
    const ch = this.stack[this.depth - 2]!.children;
    const last = ch.length - 1;
    if (last >= 0 && typeof ch[last] === 'string') ch[last] += t;
    else ch.push(t);
  }

  close(name: string): void {
    const d = --this.depth;
    if (d < 0) throw new HookError('end tag without start tag');
    if (d === 0) return;
    const el = this.stack[d - 1]!;
    if (this.checkNames && el.name !== name) throw new HookError('mismatched end tag');
    if (d === 1) this.sink.element(el);
  }
}

function guarded(sink: Sink, inst: { write(c: Buffer): void; end(): void }): Instance {
  let failed = false;
  const run = (f: () => void) => {
    if (failed) return;
    try {
      f();
    } catch (e) {
      failed = true;
      if (e instanceof HookError) sink.error('hook', e.message);
      else sink.error('rejects', String((e as Error).message ?? e).split('\n')[0]!);
    }
  };
  return { write: (c) => run(() => inst.write(c)), end: () => run(() => inst.end()) };
}

const saxesDriver: Driver = {
  name: 'saxes 6',
  make(sink) {
    const dec = new TextDecoder('utf-8', { fatal: true });
    const b = new Builder(sink);
    const p = new SaxesParser({ xmlns: true, position: false });
    p.on('opentag', (t: SaxesTagNS) => {
      const attrs: Attrs = {};
      const as = t.attributes as Record<string, SaxesAttributeNS>;
      for (const k in as) {
        const a = as[k]!;
        if (a.prefix !== 'xmlns' && k !== 'xmlns') attrs[k] = a.value;
      }
      b.open(t.local, t.uri, attrs);
    });
    p.on('text', (t) => b.text(t));
    p.on('cdata', (t) => b.text(t));
    p.on('closetag', (t) => b.close(t.name));
    p.on('doctype', () => {
      throw new HookError('doctype');
    });
    p.on('comment', () => {
      throw new HookError('comment');
    });
    p.on('processinginstruction', () => {
      throw new HookError('processing instruction');
    });
    p.on('error', (e) => {
      throw e;
    });
    return guarded(sink, {
      write: (c) => void p.write(dec.decode(c, { stream: true })),
      end: () => {
        p.write(dec.decode());
        p.close();
      },
    });
  },
};

const saxDriver: Driver = {
  name: 'sax 1.6 strict',
  make(sink) {
    const dec = new TextDecoder('utf-8', { fatal: true });
    const b = new Builder(sink);
    const p = sax.parser(true, { xmlns: true, position: false, strictEntities: true } as sax.SAXOptions);
    let started = false;
    p.onopentag = (tag) => {
      started = true;
      const t = tag as sax.QualifiedTag;
      const attrs: Attrs = {};
      for (const k in t.attributes) {
        const a = t.attributes[k]!;
        if (a.prefix !== 'xmlns' && k !== 'xmlns') attrs[k] = a.value;
      }
      b.open(t.local, t.uri, attrs);
    };
    p.ontext = (t) => b.text(t);
    p.oncdata = (t) => b.text(t);
    p.onclosetag = (name) => b.close(name);
    p.ondoctype = () => {
      throw new HookError('doctype');
    };
    p.oncomment = () => {
      throw new HookError('comment');
    };
    p.onprocessinginstruction = (pi) => {
      if (pi.name !== 'xml' || started) throw new HookError('processing instruction');
    };
    p.onerror = (e) => {
      throw e;
    };
    return guarded(sink, {
      write: (c) => void p.write(dec.decode(c, { stream: true })),
      end: () => {
        p.write(dec.decode());
        p.close();
      },
    });
  },
};

type SaxLtxCtor = new () => {
  on(ev: string, f: (...a: never[]) => void): void;
  write(s: string): void;
  end(): void;
};

function ltxDriver(SaxLtx: SaxLtxCtor): Driver {
  return {
    name: 'ltx 3',
    make(sink) {
      const dec = new TextDecoder('utf-8', { fatal: true });
      // Like @xmpp/xml: ltx does no namespace processing; end tags are checked by the builder.
      const b = new Builder(sink, true);
      const p = new SaxLtx();
      p.on('startElement', (name: string, attrs: Attrs) => b.open(name, undefined, attrs));
      p.on('endElement', (name: string) => b.close(name));
      p.on('text', (t: string) => b.text(t));
      return guarded(sink, {
        write: (c) => p.write(dec.decode(c, { stream: true })),
        end: () => {
          p.write(dec.decode());
          p.end();
        },
      });
    },
  };
}

const mineDriver: Driver = {
  name: 'StreamParser',
  make(sink) {
    let failed = false;
    const p = new StreamParser({
      onOpen() {},
      onElement: (el) => sink.element(el),
      onClose() {},
      onError: (e) => {
        failed = true;
        sink.error('rejects', e.message);
      },
    });
    return {
      write: (c) => p.write(c),
      end: () => {
        if (!failed) p.end();
      },
    };
  },
};

// ---------------------------------------------------------------- throughput

function arg(name: string, def: number): number {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

function throughput(driver: Driver, chunks: Buffer[], bytes: number, expect: number, runs: number): { best: number; median: number } {
  const rates: number[] = [];
  for (let r = 0; r <= runs; r++) {
    let count = 0;
    let error: string | undefined;
    const inst = driver.make({ element: () => void count++, error: (_h, m) => void (error ??= m) });
    const t0 = performance.now();
    for (const c of chunks) inst.write(c);
    inst.end();
    const ms = performance.now() - t0;
    if (error !== undefined) throw new Error(`${driver.name}: ${error}`);
    if (count !== expect) throw new Error(`${driver.name}: ${count} stanzas, expected ${expect}`);
    if (r > 0) rates.push(bytes / 1e6 / (ms / 1000)); // run 0 is warm-up
  }
  rates.sort((a, b) => a - b);
  return { best: rates[rates.length - 1]!, median: rates[Math.floor(rates.length / 2)]! };
}

function decodeRate(chunks: Buffer[], bytes: number, runs: number, f: (c: Buffer) => unknown): number {
  let best = 0;
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    for (const c of chunks) f(c);
    const ms = performance.now() - t0;
    if (r > 0) best = Math.max(best, bytes / 1e6 / (ms / 1000));
  }
  return best;
}

// ---------------------------------------------------------------- correctness

const H = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='capulet.lit' version='1.0'>";
const F = '</stream:stream>';
const M = "<message to='juliet@capulet.lit'><body>hi</body></message>";
const LOL =
  '<!DOCTYPE lolz [<!ENTITY lol "lol">' +
  Array.from({ length: 9 }, (_, k) => `<!ENTITY lol${k + 1} "${`&lol${k === 0 ? '' : k};`.repeat(10)}">`).join('') +
  ']>';

interface Case {
  name: string;
  chunks: (string | Buffer)[];
  /** Must be rejected; otherwise must be accepted and pass `check`. */
  reject: boolean;
  check?: (els: Element[]) => boolean;
}

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

const CASES: Case[] = [
  {
    name: "leading <?xml version='1.0'?> allowed",
    chunks: ["<?xml version='1.0'?>" + H + M + F],
    reject: false,
    check: (els) => els.length === 1 && els[0]!.getChildText('body') === 'hi',
  },
  {
    name: 'CDATA section allowed',
    chunks: [H + '<message><body><![CDATA[a<b>&c]]></body></message>' + F],
    reject: false,
    check: (els) => els[0]?.getChildText('body') === 'a<b>&c',
  },
  {
    name: 'UTF-8 char split across chunks',
    chunks: [bytes(H + '<message><body>caf', [0xc3]), bytes([0xa9], '</body></message>' + F)],
    reject: false,
    check: (els) => els[0]?.getChildText('body') === 'café',
  },
  {
    name: 'resolves namespaces (prefix, default)',
    chunks: [H + "<stream:features><foo:x xmlns:foo='urn:a'><y/></foo:x></stream:features>" + M + F],
    reject: false,
    check: (els) => {
      const f = els[0];
      const x = f?.getChild('x');
      return (
        f?.name === 'features' &&
        f.attrs.xmlns === 'http://etherx.jabber.org/streams' &&
        x?.attrs.xmlns === 'urn:a' &&
        x.getChild('y')?.attrs.xmlns === 'jabber:client' &&
        els[1]?.attrs.xmlns === 'jabber:client'
      );
    },
  },
  { name: 'DOCTYPE', chunks: ['<!DOCTYPE stream:stream>' + H + M + F], reject: true },
  { name: 'entity declarations (billion laughs)', chunks: [LOL + H + '<message><body>&lol9;</body></message>' + F], reject: true },
  { name: 'processing instruction', chunks: [H + '<?foo bar?>' + M + F], reject: true },
  { name: 'comment', chunks: [H + '<!-- hi -->' + M + F], reject: true },
  { name: 'undefined entity &foo;', chunks: [H + '<message><body>&foo;</body></message>' + F], reject: true },
  { name: 'HTML entity &nbsp;', chunks: [H + '<message><body>&nbsp;</body></message>' + F], reject: true },
  { name: 'invalid UTF-8 (C3 28)', chunks: [bytes(H + '<message><body>', [0xc3, 0x28], '</body></message>' + F)], reject: true },
  { name: 'UTF-8 surrogate (ED A0 80)', chunks: [bytes(H + '<message><body>', [0xed, 0xa0, 0x80], '</body></message>' + F)], reject: true },
  { name: 'char ref &#0;', chunks: [H + '<message><body>&#0;</body></message>' + F], reject: true },
  { name: 'control char U+0001', chunks: [H + '<message><body>\u0001</body></message>' + F], reject: true },
  { name: 'unbound prefix', chunks: [H + '<foo:message/>' + F], reject: true },
  { name: 'mismatched tags', chunks: [H + '<message><body></message></body>' + F], reject: true },
  { name: 'multiple roots', chunks: [H + M + F + '<message/>'], reject: true },
  { name: 'text before root', chunks: ['hello' + H + M + F], reject: true },
  { name: 'duplicate attribute', chunks: [H + "<message id='a' id='b'/>" + F], reject: true },
  { name: "']]>' in text", chunks: [H + '<message><body>a]]>b</body></message>' + F], reject: true },
  { name: "'<' in attribute value", chunks: [H + "<message id='a<b'/>" + F], reject: true },
  { name: 'unquoted attribute', chunks: [H + '<message id=a/>' + F], reject: true },
];

function correctness(driver: Driver, c: Case): string {
  const els: Element[] = [];
  let how: string | undefined;
  const inst = driver.make({ element: (el) => els.push(el), error: (h) => void (how ??= h) });
  for (const ch of c.chunks) inst.write(typeof ch === 'string' ? Buffer.from(ch) : ch);
  inst.end();
  if (c.reject) return how ?? 'MISSED';
  if (how !== undefined) return 'WRONG (' + how + ')';
  return c.check === undefined || c.check(els) ? 'ok' : 'WRONG';
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (r: string[]) => '| ' + r.map((c, k) => pad(c, w[k]!)).join(' | ') + ' |';
  return [line(header), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const count = arg('stanzas', 100000);
  const runs = arg('runs', 5);
  const chunkSize = arg('chunk', 1400);

  const ltxName = 'ltx';
  const ltx = (await import(ltxName)) as { Parser: { prototype: { DefaultParser: SaxLtxCtor } } };
  const drivers = [saxesDriver, saxDriver, ltxDriver(ltx.Parser.prototype.DefaultParser), mineDriver];

  let stanzas = makeStanzas(count);
  if (process.argv.includes('--ascii')) stanzas = stanzas.map((st) => st.replace(/[^\x00-\x7f]/g, '?'));
  const buf = Buffer.from(STREAM_HEADER + stanzas.join('') + STREAM_FOOTER);
  const chunks = chunked(buf, chunkSize);
  const ascii = buf.length === STREAM_HEADER.length + stanzas.reduce((n, s) => n + s.length, 0) + STREAM_FOOTER.length;
  console.log(
    `corpus: ${count} stanzas, ${(buf.length / 1e6).toFixed(1)} MB (${ascii ? 'ASCII' : 'mixed UTF-8'}), ` +
      `${chunks.length} chunks of ${chunkSize} bytes; node ${process.version}; best/median of ${runs} runs after a warm-up\n`,
  );

  // Sanity: the namespace-aware parsers agree element for element (attribute order aside).
  const canon = (el: Element): string =>
    '<' +
    el.name +
    Object.keys(el.attrs)
      .sort()
      .map((k) => ` ${k}=${JSON.stringify(el.attrs[k])}`)
      .join('') +
    '>' +
    el.children.map((c) => (typeof c === 'string' ? JSON.stringify(c) : canon(c))).join('') +
    '</>';
  const collect = (d: Driver) => {
    const out: string[] = [];
    const inst = d.make({ element: (el) => out.push(canon(el)), error: (_h, m) => out.push('ERROR ' + m) });
    for (const c of chunks) inst.write(c);
    inst.end();
    return out;
  };
  const mine = collect(mineDriver);
  const ref = collect(saxesDriver);
  const diff = mine.findIndex((s, k) => s !== ref[k]);
  console.log(
    diff < 0 && mine.length === ref.length
      ? `StreamParser output identical to saxes on all ${mine.length} stanzas\n`
      : `MISMATCH at stanza ${diff}:\n  mine:  ${mine[diff]}\n  saxes: ${ref[diff]}\n`,
  );

  const rows: string[][] = [];
  const decIn = new TextDecoder('utf-8', { fatal: true });
  rows.push([
    '(decode only) TextDecoder fatal, streaming',
    decodeRate(chunks, buf.length, runs, (c) => decIn.decode(c, { stream: true })).toFixed(0),
    '',
  ]);
  rows.push(['(decode only) isUtf8 + toString', decodeRate(chunks, buf.length, runs, (c) => isUtf8(c) && c.toString('utf8')).toFixed(0), '']);
  for (const d of drivers) {
    const r = throughput(d, chunks, buf.length, count, runs);
    rows.push([d.name, r.best.toFixed(1), r.median.toFixed(1)]);
  }
  console.log('(a) throughput, MB/s, stream -> stanza Elements\n');
  console.log(table(['parser', 'best', 'median'], rows));

  console.log('\n(b) restricted-XML correctness\n');
  console.log(
    table(
      ['case', ...drivers.map((d) => d.name)],
      CASES.map((c) => [(c.reject ? 'reject: ' : 'accept: ') + c.name, ...drivers.map((d) => correctness(d, c))]),
    ),
  );
  console.log(
    '\nrejects = the parser raises an error; hook = it reports the construct as an event we could reject on; ' +
      'MISSED = accepted silently; invalid UTF-8 is caught by the fatal TextDecoder in front of the libraries.',
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
