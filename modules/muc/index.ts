// XEP-0045: Multi-User Chat, on conference.<domain> for every hosted domain (with XEP-0410 self-ping, XEP-0359 stanza ids and XEP-0313 room archives when modules/mam is loaded).
import { defineModule } from '../../src';
import type {} from '../disco'; // the 'disco' service type (optional at run time)
import { MucHost, type MucService } from './service';
import { MUC_MIGRATIONS, SqliteMucStore } from './store';

export * from './ns';
export type { RoomSummary, OccupantSummary, CreateRoomOptions, MucService } from './service';
export type { RoomConfig, Whois, AllowPm } from './config';
export type { Affiliation, Role, ArchiveLike } from './room';

declare module '../../src/module' {
  interface ServiceMap {
    muc: MucService;
  }
}

export interface MucOptions {
  /** The service of domain d is `<subdomain>.d`. */
  subdomain: string;
  /** Rooms one account may own (creating more is refused with not-allowed). */
  maxRoomsPerUser: number;
  /** Occupants of one room at most; the default and the ceiling of muc#roomconfig_maxusers. */
  maxOccupants: number;
  /** Messages of history a room keeps; the default and the ceiling of muc#maxhistoryfetch. */
  maxHistory: number;
  /** Messages per second one occupant may send, with a burst of twice as many (0: no limit). */
  messageRatePerSecond: number;
  maxNickLength: number;
  maxSubjectLength: number;
  /** Whether new rooms are persistent until their owner says otherwise. */
  defaultPersistent: boolean;
  /** Whether users may create rooms by entering them (the CLI always may). */
  allowRoomCreation: boolean;
}

/** Removals of the disco items added by the loaded instances, for teardown. */
const undoDisco: (() => void)[] = [];

function positiveInteger(name: string, v: number, allowZero = false): void {
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1)) throw new Error(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, not ${String(v)}`);
}

export default defineModule<MucOptions>({
  name: 'muc',
  defaults: {
    subdomain: 'conference',
    maxRoomsPerUser: 100,
    maxOccupants: 200,
    maxHistory: 50,
    messageRatePerSecond: 5,
    maxNickLength: 64,
    maxSubjectLength: 1024,
    defaultPersistent: false,
    allowRoomCreation: true,
  },
  migrations: MUC_MIGRATIONS,
  async setup(api) {
    const o = api.options;
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i.test(o.subdomain)) throw new Error(`subdomain must be one DNS label, not "${o.subdomain}"`);
    positiveInteger('maxRoomsPerUser', o.maxRoomsPerUser, true);
    positiveInteger('maxOccupants', o.maxOccupants);
    positiveInteger('maxHistory', o.maxHistory, true);
    positiveInteger('maxNickLength', o.maxNickLength);
    positiveInteger('maxSubjectLength', o.maxSubjectLength);
    if (!(o.messageRatePerSecond >= 0)) throw new Error(`messageRatePerSecond must be 0 or more, not ${String(o.messageRatePerSecond)}`);

    const domains = api.domains.map((d) => `${o.subdomain}.${d}`);
    const host = new MucHost(api, new SqliteMucStore(api.db), {
      maxOccupants: o.maxOccupants,
      maxHistory: o.maxHistory,
      maxSubjectLength: o.maxSubjectLength,
      maxNickLength: o.maxNickLength,
      messageRatePerSecond: o.messageRatePerSecond,
    }, {
      allowRoomCreation: o.allowRoomCreation,
      maxRoomsPerUser: o.maxRoomsPerUser,
      defaultPersistent: o.defaultPersistent,
    }, domains);
    await host.load();

    for (const domain of domains) api.serveDomain(domain, (stanza) => host.handle(stanza));
    const disco = api.service('disco');
    if (disco) for (const domain of domains) undoDisco.push(disco.addItem(domain, 'Chatrooms'));

    api.hook('session/closed', async ({ session }) => {
      await host.sessionClosed(session.jid.toString());
    });
    api.hook('user/deleted', async ({ jid }) => {
      await host.userDeleted(jid.bareString);
    });
    api.every(30_000, () => host.expire());
    api.provide('muc', host);
  },
  teardown() {
    for (const undo of undoDisco.splice(0)) undo();
  },
});
