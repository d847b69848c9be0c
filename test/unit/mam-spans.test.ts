// The packing of an archive's sequence numbers in its spans (modules/mam/spans.ts).
import { ALL_PEERS, packSeqs, SpanCollector, unpackSeqs } from '../../modules/mam/spans';

const roundTrip = (seqs: number[]): number[] =>
  unpackSeqs({ first_seq: seqs[0]!, last_seq: seqs[seqs.length - 1]!, seqs: packSeqs(seqs) });

describe('archive spans', () => {
  it('packs ascending sequence numbers as gaps, a byte each when close', () => {
    expect(packSeqs([5])).toEqual(Buffer.alloc(0));
    expect(packSeqs([5, 6, 8, 135])).toEqual(Buffer.from([1, 2, 0x7f]));
    expect(packSeqs([1, 129])).toEqual(Buffer.from([0x80, 0x01]));
    for (const seqs of [[7], [1, 2, 3, 4], [10, 300, 70_000, 2 ** 33, 2 ** 52 + 3, Number.MAX_SAFE_INTEGER]]) {
      expect(roundTrip(seqs)).toEqual(seqs);
    }
    const many = Array.from({ length: 5000 }, (_, i) => 1000 + i * i);
    expect(roundTrip(many)).toEqual(many);
  });

  it('refuses numbers that do not go up', () => {
    expect(() => packSeqs([3, 3])).toThrow(RangeError);
    expect(() => packSeqs([3, 2])).toThrow(RangeError);
  });

  it('collects a span per archive and one per archive and peer', () => {
    const c = new SpanCollector();
    c.add(1, 2, 10);
    c.add(2, 1, 10);
    c.add(1, 3, 11);
    c.add(1, 2, 12);
    c.add(3, 3, 13); // a message to oneself, in both sides of the archive: once
    c.add(3, 3, 13);
    expect([...c.spans()]).toEqual([
      [1, ALL_PEERS, [10, 11, 12]],
      [1, 2, [10, 12]],
      [1, 3, [11]],
      [2, ALL_PEERS, [10]],
      [2, 1, [10]],
      [3, ALL_PEERS, [13]],
      [3, 3, [13]],
    ]);
  });
});
