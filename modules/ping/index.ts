// XEP-0199: XMPP Ping. An empty result is the whole protocol.
import { defineModule } from '../../src';

export const NS_PING = 'urn:xmpp:ping';

/**
 * Answers pings to the server (scope 'host'). A ping without 'to' reaches this handler too,
 * since the router falls back to host handlers when no 'self'/'account' handler exists.
 * Pings to an account's bare JID are not answered on the account's behalf (as Prosody):
 * the router returns service-unavailable; pings to a full JID go to that client.
 */
export default defineModule({
  name: 'ping',
  features: [NS_PING],
  setup(api) {
    api.iq('get', NS_PING, 'ping', () => undefined, 'host');
  },
});
