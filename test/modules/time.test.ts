import { x } from '../../src/xml/element';
import { NS_STANZAS } from '../../src/errors';
import { createTestHost, type TestHost } from '../helpers/test-host';
import time, { NS_TIME, tzo, utcStamp } from '../../modules/time';

describe('time (XEP-0202)', () => {
  let host: TestHost;
  beforeEach(async () => {
    host = await createTestHost({ modules: [time] });
  });
  afterEach(() => host.close());

  const timeIq = (id: string) => x('iq', { type: 'get', id, to: 'example.test' }, x('time', { xmlns: NS_TIME }));

  it('answers with the UTC offset and the time in UTC', async () => {
    const alice = await host.connect('alice@example.test/phone');
    const now = new Date(Date.UTC(2006, 11, 19, 17, 58, 35, 123));
    jest.useFakeTimers({ now, doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    try {
      await alice.receive(timeIq('t1'));
    } finally {
      jest.useRealTimers();
    }
    expect(alice.take()).toEqual([
      x('iq', { type: 'result', id: 't1', to: 'alice@example.test/phone', from: 'example.test' },
        x('time', { xmlns: NS_TIME }, x('tzo', null, tzo(now)), x('utc', null, '2006-12-19T17:58:35Z'))),
    ]);
  });

  it('reports a current time', async () => {
    const alice = await host.connect('alice@example.test/phone');
    const before = Math.floor(Date.now() / 1000) * 1000;
    await alice.receive(timeIq('t2'));
    const [reply] = alice.take();
    const utc = reply?.getChild('time', NS_TIME)?.getChildText('utc') ?? '';
    expect(utc).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(utc)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(utc)).toBeLessThanOrEqual(Date.now());
    expect(reply?.getChild('time', NS_TIME)?.getChildText('tzo')).toMatch(/^[+-]\d\d:\d\d$/);
  });

  it('formats the offset of the process time zone (XEP-0082 TZD)', () => {
    // getTimezoneOffset() is minutes *behind* UTC: -330 is India (+05:30), 360 is US Central (-06:00).
    const inZone = (minutesBehind: number) => Object.assign(new Date(), { getTimezoneOffset: () => minutesBehind });
    expect(tzo(inZone(0))).toBe('+00:00');
    expect(tzo(inZone(-330))).toBe('+05:30');
    expect(tzo(inZone(360))).toBe('-06:00');
    expect(tzo(inZone(570))).toBe('-09:30');
    expect(tzo(inZone(-765))).toBe('+12:45');
    expect(utcStamp(new Date(Date.UTC(2024, 0, 15, 12, 0, 0, 999)))).toBe('2024-01-15T12:00:00Z');
  });

  it('stops answering when unloaded', async () => {
    const alice = await host.connect('alice@example.test/phone');
    await host.core.modules.unload('time');
    await alice.receive(timeIq('t3'));
    expect(alice.take()).toEqual([
      x('iq', { type: 'error', id: 't3', from: 'example.test', to: 'alice@example.test/phone' },
        x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS_STANZAS }))),
    ]);
  });
});
