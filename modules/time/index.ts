// XEP-0202: Entity Time. The server's UTC offset and the current time in UTC (XEP-0082).
import { defineModule, x } from '../../src';

export const NS_TIME = 'urn:xmpp:time';

export default defineModule({
  name: 'time',
  features: [NS_TIME],
  setup(api) {
    api.iq('get', NS_TIME, 'time', () => {
      const now = new Date();
      return x('time', { xmlns: NS_TIME }, x('tzo', null, tzo(now)), x('utc', null, utcStamp(now)));
    }, 'host');
  },
});

/** XEP-0082 TZD of this process at `date`, always in the ±hh:mm form (so UTC is "+00:00"). */
export function tzo(date: Date): string {
  const offset = -date.getTimezoneOffset(); // minutes east of UTC
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** XEP-0082 DateTime in UTC, without fractional seconds: 2006-12-19T17:58:35Z. */
export function utcStamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function pad(n: number): string {
  return n < 10 ? '0' + n : String(n);
}
