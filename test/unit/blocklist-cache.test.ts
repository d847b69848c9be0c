import { BlocklistCache } from '../../modules/blocking';

/** A store that counts its loads: which lists the cache had to fetch again. */
function countingStore(): { list(account: string): Promise<string[]>; loads: string[] } {
  const loads: string[] = [];
  return { loads, list: async (account) => (loads.push(account), [`blocked-by-${account}`]) };
}

describe('blocklist cache', () => {
  it('keeps lists in use and, when full, drops one not used since the last eviction', async () => {
    const store = countingStore();
    const cache = new BlocklistCache(store, 3);
    for (const a of ['a', 'b', 'c']) expect([...(await cache.load(a))]).toEqual([`blocked-by-${a}`]);
    expect(cache.peek('a')).toBeDefined();
    expect(cache.peek('c')).toBeDefined();
    await cache.load('d'); // full: b, the one not used since it was loaded, goes
    expect(cache.peek('b')).toBeUndefined();
    for (const a of ['a', 'c', 'd']) expect(cache.peek(a)).toBeDefined();
    expect(store.loads).toEqual(['a', 'b', 'c', 'd']);
    // a, c and d are all marked now: a full round unmarks them, then the first of the round
    // goes, c (a went behind it when it was spared for being used, the time before).
    await cache.load('e');
    expect(cache.peek('c')).toBeUndefined();
    for (const a of ['a', 'd', 'e']) expect(cache.peek(a)).toBeDefined();
    expect(store.loads).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('loads each list once while it stays cached, and again after forget', async () => {
    const store = countingStore();
    const cache = new BlocklistCache(store, 10);
    await Promise.all([cache.load('a'), cache.load('a')]);
    for (let i = 0; i < 5; i++) expect(cache.peek('a')).toBeDefined();
    await cache.load('a');
    cache.forget('a');
    expect(cache.peek('a')).toBeUndefined();
    await cache.load('a');
    expect(store.loads).toEqual(['a', 'a']);
  });
});
