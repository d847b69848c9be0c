// Spans: where an archive's messages are. Each write transaction adds one row of mam_span per
// archive it touched, holding that archive's new sequence numbers, and one per archive and
// peer (a conversation). An archive, or a conversation, is read span after span in sequence
// order. This replaces an index entry per message and archive: SQLite's index upkeep was most
// of the cost of archiving a message, and a busy server writes thousands of messages to the
// same archives in one transaction.

/** The peer of the span that covers an archive's messages with every peer. */
export const ALL_PEERS = 0;

/** A row of mam_span: sequence numbers first_seq..last_seq, those in between packed in seqs. */
export interface Span {
  first_seq: number;
  last_seq: number;
  seqs: Uint8Array;
}

/**
 * Ascending sequence numbers as the gaps between them (the first one is the span's
 * first_seq), each an unsigned LEB128 number: a byte or two per message.
 */
export function packSeqs(seqs: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(8 * seqs.length);
  let o = 0;
  for (let i = 1; i < seqs.length; i++) {
    let gap = seqs[i]! - seqs[i - 1]!;
    if (!(gap > 0)) throw new RangeError('archive spans: sequence numbers must go up');
    while (gap >= 0x80) {
      out[o++] = (gap % 0x80) | 0x80;
      gap = Math.floor(gap / 0x80);
    }
    out[o++] = gap;
  }
  return out.subarray(0, o);
}

export function unpackSeqs(span: Span): number[] {
  const out = [span.first_seq];
  const b = span.seqs;
  let seq = span.first_seq;
  for (let o = 0; o < b.length; ) {
    let gap = 0;
    let scale = 1;
    let c: number;
    do {
      c = b[o++]!;
      gap += (c & 0x7f) * scale;
      scale *= 0x80;
    } while (c & 0x80);
    seq += gap;
    out.push(seq);
  }
  return out;
}

/** One transaction's sequence numbers, per archive and per archive and peer. */
export class SpanCollector {
  private readonly archives = new Map<number, { all: number[]; peers: Map<number, number[]> }>();

  /**
   * seq is in owner's archive, with peer: higher than any added before, or the same as the
   * last (a row in both sides of one archive, a message to oneself, is in it once).
   */
  add(owner: number, peer: number, seq: number): void {
    let archive = this.archives.get(owner);
    if (archive === undefined) {
      archive = { all: [], peers: new Map() };
      this.archives.set(owner, archive);
    }
    if (archive.all[archive.all.length - 1] === seq) return;
    archive.all.push(seq);
    const withPeer = archive.peers.get(peer);
    if (withPeer === undefined) archive.peers.set(peer, [seq]);
    else withPeer.push(seq);
  }

  /** The spans collected: [owner, peer (ALL_PEERS for the whole archive), sequence numbers]. */
  *spans(): Generator<[number, number, number[]]> {
    for (const [owner, { all, peers }] of this.archives) {
      yield [owner, ALL_PEERS, all];
      for (const [peer, seqs] of peers) yield [owner, peer, seqs];
    }
  }
}
