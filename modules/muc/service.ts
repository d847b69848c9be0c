// XEP-0045: the MUC service of one or more conference domains: rooms by JID, room creation, service discovery.
import { randomBytes } from 'node:crypto';
import { Element, Jid, StanzaError, UserError, x, type ModuleApi } from '../../src';
import { parseXml } from '../../src/xml/parse';
import { defaultConfig, restoreConfig, type AllowPm, type Whois } from './config';
import { NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MAM, NS_MUC, NS_MUC_UNIQUE, NS_PING } from './ns';
import { checkNick, errorFor, Room, type Affiliation, type ArchiveLike, type ForwardedIq, type MucLimits, type Role, type RoomHost } from './room';
import type { MucStore } from './store';

/** A room as the CLI lists it. */
export interface RoomSummary {
  jid: string;
  name: string;
  description: string;
  subject: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  passwordProtected: boolean;
  /** Real JIDs visible to all occupants (whois anyone). */
  nonAnonymous: boolean;
  /** Created and not configured yet. */
  locked: boolean;
  occupants: number;
  maxUsers: number;
  owners: string[];
  /** ISO 8601. */
  createdAt: string;
}

export interface OccupantSummary {
  nick: string;
  /** The real bare JID. */
  jid: string;
  /** The real full JIDs of the joined sessions. */
  sessions: string[];
  role: Role;
  affiliation: Affiliation;
}

export interface CreateRoomOptions {
  /** Default true: a room made from the command line should outlive its first visitor. */
  persistent?: boolean;
  name?: string;
  description?: string;
  public?: boolean;
  membersOnly?: boolean;
  moderated?: boolean;
  /** A non-empty password makes the room password-protected. */
  password?: string;
  maxUsers?: number;
  whois?: Whois;
  allowPm?: AllowPm;
  /** A bare JID made the room's owner. */
  owner?: string;
}

/** Room administration for the CLI (`xmppd room list|create|destroy|occupants`). Errors are UserErrors. */
export interface MucService {
  /** The conference domains served, e.g. ['conference.example.org']. */
  domains(): string[];
  listRooms(): RoomSummary[];
  createRoom(roomJid: string, options?: CreateRoomOptions): Promise<RoomSummary>;
  /** False when there is no such room. Occupants get the XEP-0045 §10.9 destruction notice. */
  destroyRoom(roomJid: string, reason?: string): Promise<boolean>;
  /** Undefined when there is no such room. */
  occupants(roomJid: string): OccupantSummary[] | undefined;
}

export interface ServiceOptions {
  allowRoomCreation: boolean;
  maxRoomsPerUser: number;
  defaultPersistent: boolean;
}

const SERVICE_NAME = 'Chatrooms';
/** A forwarded IQ not answered within this time is forgotten. */
const FORWARD_TTL_MS = 60_000;
const MAX_FORWARDED = 10_000;

export class MucHost implements RoomHost, MucService {
  readonly rooms = new Map<string, Room>();
  /** Real full JID → the rooms it is in. */
  private readonly joinedRooms = new Map<string, Set<Room>>();
  private readonly forwarded = new Map<string, ForwardedIq>();
  private readonly served: ReadonlySet<string>;
  private counter = 0;
  private readonly idPrefix = randomBytes(4).toString('hex');

  constructor(
    readonly api: ModuleApi<unknown>,
    readonly store: MucStore,
    readonly limits: MucLimits,
    private readonly opts: ServiceOptions,
    domains: readonly string[],
  ) {
    this.served = new Set(domains);
  }

  // ---- RoomHost ------------------------------------------------------------------

  route(el: Element): Promise<void> {
    const to = Jid.tryParse(el.attrs.to);
    if (to === undefined || !this.served.has(to.domain)) return this.api.route(el);
    // Handled in a later room task: waiting here could wait for the task that sends it.
    this.api.route(el).catch((err: unknown) => this.api.log.error({ err }, 'routing a stanza to a room failed'));
    return Promise.resolve();
  }

  archive(): ArchiveLike | undefined {
    const a = this.api.service('archive' as never) as unknown as Partial<ArchiveLike> | undefined;
    return typeof a?.append === 'function' && typeof a.query === 'function' ? (a as ArchiveLike) : undefined;
  }

  removed(room: Room): void {
    if (this.rooms.get(room.jid) === room) this.rooms.delete(room.jid);
  }

  joined(full: string, room: Room): void {
    let set = this.joinedRooms.get(full);
    if (!set) this.joinedRooms.set(full, (set = new Set()));
    set.add(room);
  }

  left(full: string, room: Room): void {
    const set = this.joinedRooms.get(full);
    if (!set) return;
    set.delete(room);
    if (set.size === 0) this.joinedRooms.delete(full);
  }

  forwardIq(room: Room, entry: ForwardedIq): string {
    const id = this.newId();
    if (this.forwarded.size >= MAX_FORWARDED) this.forwarded.delete(this.forwarded.keys().next().value!);
    this.forwarded.set(room.jid + ' ' + id, entry);
    return id;
  }

  takeForwardedIq(room: Room, id: string, from: string): ForwardedIq | undefined {
    const key = room.jid + ' ' + id;
    const entry = this.forwarded.get(key);
    if (!entry || entry.target !== from) return undefined;
    this.forwarded.delete(key);
    return entry;
  }

  newId(): string {
    return `muc-${this.idPrefix}-${(++this.counter).toString(36)}`;
  }

  /** Forgets forwarded IQs nobody answered. */
  expire(now = Date.now()): void {
    for (const [key, entry] of this.forwarded) if (now - entry.at > FORWARD_TTL_MS) this.forwarded.delete(key);
  }

  // ---- start-up and account events ----------------------------------------------

  /** Restores the persistent rooms of the served domains. */
  async load(): Promise<void> {
    for (const stored of await this.store.loadAll(this.limits.maxHistory)) {
      const jid = Jid.tryParse(stored.jid);
      if (!jid || !this.served.has(jid.domain)) continue; // a domain no longer configured: kept, not served
      const config = restoreConfig(stored.config, this.limits);
      config.persistent = true;
      const room = new Room(this, { jid, config, createdAt: stored.createdAt });
      room.restore(stored, (xml) => {
        try {
          return parseXml(xml);
        } catch (err) {
          this.api.log.warn({ err, room: stored.jid }, 'dropping an unreadable history message');
          return undefined;
        }
      });
      this.rooms.set(room.jid, room);
    }
  }

  /** A session ended: it leaves the rooms it is still in (the presence module normally did that already). */
  async sessionClosed(full: string): Promise<void> {
    for (const room of [...(this.joinedRooms.get(full) ?? [])]) await room.run(() => room.sessionEnded(full));
  }

  async userDeleted(bare: string): Promise<void> {
    await this.store.deleteAffiliationsOf(bare);
    for (const room of this.rooms.values()) room.forget(bare);
  }

  // ---- stanzas ---------------------------------------------------------------------

  /** Everything addressed to a conference domain or its JIDs. */
  async handle(stanza: Element): Promise<void> {
    const to = Jid.tryParse(stanza.attrs.to);
    const from = Jid.tryParse(stanza.attrs.from);
    if (!to || !from) return;
    if (to.local === '') return this.serviceStanza(stanza, to, from);
    const room = this.rooms.get(to.bareString);
    const type = stanza.attrs.type;
    if (stanza.name === 'iq') {
      if (type === 'result' || type === 'error') {
        if (room && to.resource !== '') await room.iqResponse(stanza, from);
        return;
      }
      const children = stanza.elements;
      if ((type !== 'get' && type !== 'set') || stanza.attrs.id === undefined || children.length !== 1) {
        return this.fail(stanza, new StanzaError('bad-request', 'An IQ get or set has an id and exactly one child element'), to.bareString);
      }
      const payload = children[0]!;
      if (!room) return this.fail(stanza, new StanzaError('item-not-found', 'No such room'), to.bareString);
      // Archive queries only read: they do not wait for the room's other stanzas.
      if (to.resource === '' && payload.name === 'query' && payload.attrs.xmlns === NS_MAM) return room.mam(stanza, from, payload);
    }
    if (!room) return this.noRoom(stanza, to, from);
    await room.run(async () => {
      if (room.destroyed) return this.handle(stanza); // destroyed while this stanza waited: as if it came now
      await this.dispatch(room, stanza, to, from);
    });
  }

  private async dispatch(room: Room, stanza: Element, to: Jid, from: Jid): Promise<void> {
    const nick = to.resource;
    switch (stanza.name) {
      case 'presence':
        return room.presence(stanza, from, nick, rawResource(stanza.attrs.to!));
      case 'message':
        return room.message(stanza, from, nick);
      case 'iq': {
        const payload = stanza.elements[0]!;
        if (nick !== '') return room.occupantIq(stanza, from, nick, payload);
        return room.iq(stanza, from, payload);
      }
    }
  }

  private async fail(stanza: Element, err: StanzaError, by: string, extra?: Element[]): Promise<void> {
    if (stanza.attrs.type === 'error') return;
    await this.route(errorFor(stanza, err, by, extra));
  }

  /** A stanza for a room that does not exist: available presence creates it (§10.1). */
  private async noRoom(stanza: Element, to: Jid, from: Jid): Promise<void> {
    const type = stanza.attrs.type;
    if (stanza.name === 'presence') {
      if (type !== undefined) return;
      return this.create(stanza, to, from);
    }
    if (type === 'error') return;
    await this.fail(stanza, new StanzaError('item-not-found', 'No such room'), to.bareString);
  }

  private ownedBy(bare: string): number {
    let n = 0;
    for (const room of this.rooms.values()) if (room.affiliationOfBare(bare) === 'owner') n++;
    return n;
  }

  /**
   * §10.1: the first to enter a room that does not exist creates it and owns it. With the MUC
   * element the room stays locked until configured (§10.1.2); without it (groupchat 1.0
   * clients) it is an instant room at once (§10.1.1).
   */
  private async create(stanza: Element, to: Jid, from: Jid): Promise<void> {
    const mucX = stanza.getChild('x', NS_MUC);
    const extra = mucX ? [x('x', { xmlns: NS_MUC })] : [];
    try {
      checkNick(to.resource, this.limits.maxNickLength);
      if (!this.opts.allowRoomCreation) throw new StanzaError('not-allowed', 'Rooms cannot be created on this service');
      if (!this.api.isLocalDomain(from.domain)) throw new StanzaError('not-allowed', 'Only users of this server may create rooms');
      if (this.ownedBy(from.bareString) >= this.opts.maxRoomsPerUser) {
        throw new StanzaError('not-allowed', `You already own ${this.opts.maxRoomsPerUser} rooms, the most this service allows`);
      }
    } catch (err) {
      if (err instanceof StanzaError) return this.fail(stanza, err, to.bareString, extra);
      throw err;
    }
    const room = new Room(this, {
      jid: to.bare(),
      config: defaultConfig(this.limits, this.opts.defaultPersistent),
      locked: mucX !== undefined,
      creator: from.toString(),
    });
    room.setAffiliation(from.bareString, 'owner');
    this.rooms.set(room.jid, room);
    await room.run(async () => {
      if (room.stored) await this.store.saveRoom(room.snapshot());
      await room.presence(stanza, from, to.resource, rawResource(stanza.attrs.to!));
    });
  }

  /** Stanzas to the service itself (§6.1-§6.3). */
  private async serviceStanza(stanza: Element, to: Jid, from: Jid): Promise<void> {
    const type = stanza.attrs.type;
    const by = to.domain;
    if (stanza.name !== 'iq') {
      if (stanza.name === 'message' && (type === undefined || type === 'normal' || type === 'chat')) {
        await this.fail(stanza, new StanzaError('service-unavailable'), by);
      }
      return;
    }
    if (type !== 'get' && type !== 'set') return;
    const children = stanza.elements;
    if (stanza.attrs.id === undefined || children.length !== 1) return this.fail(stanza, new StanzaError('bad-request'), by);
    const payload = children[0]!;
    const ns = payload.attrs.xmlns;
    let result: Element | undefined;
    try {
      if (type === 'get' && payload.name === 'query' && ns === NS_DISCO_INFO) {
        if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
        result = x('query', { xmlns: NS_DISCO_INFO },
          x('identity', { category: 'conference', name: SERVICE_NAME, type: 'text' }),
          [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_MUC_UNIQUE, NS_PING].sort().map((f) => x('feature', { var: f })));
      } else if (type === 'get' && payload.name === 'query' && ns === NS_DISCO_ITEMS) {
        if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
        const rooms = [...this.rooms.values()].filter((r) => r.domain === to.domain && !r.locked && r.config.public);
        rooms.sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
        result = x('query', { xmlns: NS_DISCO_ITEMS }, rooms.map((r) => x('item', { jid: r.jid, name: r.name })));
      } else if (type === 'get' && payload.name === 'unique' && ns === NS_MUC_UNIQUE) {
        // §10.1.4: a room name nobody uses.
        let name: string;
        do name = randomBytes(8).toString('hex'); while (this.rooms.has(`${name}@${to.domain}`));
        result = x('unique', { xmlns: NS_MUC_UNIQUE }, name);
      } else if (!(type === 'get' && payload.name === 'ping' && ns === NS_PING)) {
        throw new StanzaError('service-unavailable');
      }
    } catch (err) {
      if (err instanceof StanzaError) return this.fail(stanza, err, by);
      throw err;
    }
    await this.route(x('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: from.toString() }, result));
  }

  // ---- MucService (the CLI) ------------------------------------------------------

  domains(): string[] {
    return [...this.served].sort();
  }

  private summary(room: Room): RoomSummary {
    const c = room.config;
    return {
      jid: room.jid,
      name: c.name,
      description: c.description,
      subject: room.subject?.text ?? '',
      persistent: c.persistent,
      public: c.public,
      membersOnly: c.membersOnly,
      moderated: c.moderated,
      passwordProtected: c.passwordProtected,
      nonAnonymous: c.whois === 'anyone',
      locked: room.locked,
      occupants: room.occupants.size,
      maxUsers: c.maxUsers,
      owners: room.owners(),
      createdAt: new Date(room.createdAt).toISOString(),
    };
  }

  listRooms(): RoomSummary[] {
    return [...this.rooms.values()].sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0)).map((r) => this.summary(r));
  }

  private roomJid(input: string): Jid {
    let jid: Jid;
    try {
      jid = Jid.parse(input);
    } catch (err) {
      throw new UserError(`"${input}" is not a valid JID: ${(err as Error).message}`);
    }
    if (jid.local === '' || jid.resource !== '') throw new UserError(`"${input}" is not a room JID: use the form room@${this.domains()[0] ?? 'conference.example.org'}`);
    if (!this.served.has(jid.domain)) throw new UserError(`${jid.domain} is not a MUC service of this server (served: ${this.domains().join(', ')})`);
    return jid;
  }

  async createRoom(roomJid: string, options: CreateRoomOptions = {}): Promise<RoomSummary> {
    const jid = this.roomJid(roomJid);
    if (this.rooms.has(jid.bareString)) throw new UserError(`room ${jid} already exists`);
    const config = defaultConfig(this.limits, options.persistent ?? true);
    if (options.name !== undefined) config.name = options.name;
    if (options.description !== undefined) config.description = options.description;
    if (options.public !== undefined) config.public = options.public;
    if (options.membersOnly !== undefined) config.membersOnly = options.membersOnly;
    if (options.moderated !== undefined) config.moderated = options.moderated;
    if (options.password !== undefined && options.password !== '') {
      config.password = options.password;
      config.passwordProtected = true;
    }
    if (options.maxUsers !== undefined) {
      if (!Number.isInteger(options.maxUsers) || options.maxUsers < 1 || options.maxUsers > this.limits.maxOccupants) {
        throw new UserError(`maxUsers must be a whole number from 1 to ${this.limits.maxOccupants}`);
      }
      config.maxUsers = options.maxUsers;
    }
    if (options.whois !== undefined) {
      if (options.whois !== 'moderators' && options.whois !== 'anyone') throw new UserError('whois must be "moderators" or "anyone"');
      config.whois = options.whois;
    }
    if (options.allowPm !== undefined) {
      if (!['anyone', 'participants', 'moderators', 'none'].includes(options.allowPm)) {
        throw new UserError('allowPm must be "anyone", "participants", "moderators" or "none"');
      }
      config.allowPm = options.allowPm;
    }
    let owner: string | undefined;
    if (options.owner !== undefined) {
      const o = Jid.tryParse(options.owner);
      if (!o || o.local === '' || o.resource !== '') throw new UserError(`"${options.owner}" is not a bare JID (user@domain)`);
      owner = o.bareString;
    }
    const room = new Room(this, { jid, config });
    if (owner !== undefined) room.setAffiliation(owner, 'owner');
    this.rooms.set(room.jid, room);
    if (room.stored) await this.store.saveRoom(room.snapshot());
    return this.summary(room);
  }

  async destroyRoom(roomJid: string, reason?: string): Promise<boolean> {
    const room = this.rooms.get(this.roomJid(roomJid).bareString);
    if (!room) return false;
    await room.run(() => room.destroy(reason));
    return true;
  }

  occupants(roomJid: string): OccupantSummary[] | undefined {
    return this.rooms.get(this.roomJid(roomJid).bareString)?.occupantList();
  }
}

/** The resourcepart as the client wrote it (before normalisation), to tell whether the nick was changed (status 210). */
function rawResource(to: string): string {
  const slash = to.indexOf('/');
  return slash === -1 ? '' : to.slice(slash + 1);
}
