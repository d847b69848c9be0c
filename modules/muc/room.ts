// XEP-0045: one room: occupants, roles and affiliations, messages, history, administration.
import { Element, Jid, StanzaError, x, type ModuleApi } from '../../src';
import { applyConfigForm, configForm, formValues, roomInfoForm, type ConfigLimits, type RoomConfig } from './config';
import { historyEntry, parseHistoryRequest, selectHistory, type HistoryEntry } from './history';
import {
  NS_CLIENT, NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_HINTS, NS_MAM, NS_MUC, NS_MUC_ADMIN, NS_MUC_OWNER,
  NS_MUC_REQUEST, NS_MUC_SELF_PING, NS_MUC_STABLE_ID, NS_MUC_USER, NS_PING, NS_SID, NS_VCARD, Status,
} from './ns';
import type { AffiliationRow, MucStore, StoredAffiliation, StoredRoom } from './store';

export type Affiliation = StoredAffiliation | 'none';
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';

const AFFILIATIONS: readonly Affiliation[] = ['owner', 'admin', 'member', 'none', 'outcast'];
const ROLES: readonly Role[] = ['moderator', 'participant', 'visitor', 'none'];
const RANK: Record<Affiliation, number> = { outcast: -1, none: 0, member: 1, admin: 2, owner: 3 };

/** The message archive (modules/mam) as this module uses it; optional at run time. */
export interface ArchiveLike {
  append(owner: string, entry: { with: string; stanza: Element; direction: 'in' | 'out'; at?: number }): Promise<string>;
  query(owner: string, query: Element, requester: Jid): Promise<Element>;
}

export interface MucLimits extends ConfigLimits {
  maxNickLength: number;
  /** Messages per second per occupant (0: unlimited), with a burst of twice that. */
  messageRatePerSecond: number;
}

/** What a room needs from the service that holds it. */
export interface RoomHost {
  readonly api: ModuleApi<unknown>;
  readonly store: MucStore;
  readonly limits: MucLimits;
  /**
   * Routes a stanza from a room task. One addressed to this service (a room, the service) is
   * not waited for: its room task queues behind the one sending it, which must not wait for it.
   */
  route(el: Element): Promise<void>;
  archive(): ArchiveLike | undefined;
  /** The room is gone (destroyed, or temporary and empty): forget it. */
  removed(room: Room): void;
  /** A real JID joined or left the room (for the session-end safety net). */
  joined(full: string, room: Room): void;
  left(full: string, room: Room): void;
  /** Remembers an IQ forwarded to an occupant; returns the id to send it with. */
  forwardIq(room: Room, entry: ForwardedIq): string;
  /** Takes back the forwarded IQ a response answers, if it is one. */
  takeForwardedIq(room: Room, id: string, from: string): ForwardedIq | undefined;
  newId(): string;
}

export interface ForwardedIq {
  /** The real full JID that sent the IQ, and its id. */
  requester: string;
  id: string;
  /** The occupant JID the IQ was addressed to (the response comes from it). */
  occupantJid: string;
  /** Where it was forwarded (the response must come from there). */
  target: string;
  at: number;
}

interface AffiliationEntry {
  affiliation: StoredAffiliation;
  nick?: string;
  reason?: string;
}

/** Presence of one occupant as sent: who sees what differs only in the <item/> and status codes. */
interface PresenceOpts {
  type?: 'unavailable';
  /** The presence children (show, status, caps ...); the occupant's current presence by default. */
  payload?: readonly Element[];
  affiliation?: Affiliation;
  role?: Role;
  /** The new nick, in the unavailable presence of a nick change (§7.6). */
  nick?: string;
  actor?: string;
  reason?: string;
  /** Status codes for everyone. */
  codes?: readonly number[];
  /** Extra status codes for the session that caused the presence, which also gets its 'id'. */
  trigger?: { session: string; id: string | undefined; codes: readonly number[] };
  /** Also send the occupant's self-presence to these sessions (which have just left). */
  alsoSelf?: readonly string[];
}

/** Conditions of an error from an occupant that mean its client is gone (it is removed with status 333). */
const GONE_CONDITIONS: ReadonlySet<string> = new Set([
  'gone', 'item-not-found', 'jid-malformed', 'recipient-unavailable', 'redirect', 'remote-server-not-found',
  'remote-server-timeout', 'service-unavailable',
]);

export class Occupant {
  /** Each joined session of the occupant (real full JID) with the children of its latest presence. */
  readonly sessions = new Map<string, readonly Element[]>();
  /** The session whose presence stands for the occupant. */
  latest = '';
  private tokens: number;
  private refilled = Date.now();

  constructor(public nick: string, readonly bare: string, public role: Role, private readonly rate: number) {
    this.tokens = this.burst;
  }

  private get burst(): number {
    return Math.max(1, Math.ceil(this.rate * 2));
  }

  get payload(): readonly Element[] {
    return this.sessions.get(this.latest) ?? [];
  }

  /** Takes one message from the occupant's allowance (a token bucket); false when it is used up. */
  consume(now = Date.now()): boolean {
    if (this.rate <= 0) return true;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilled) * this.rate) / 1000);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** A child of a stanza in the jabber:client namespace (no xmlns of its own). */
export function clientChild(stanza: Element, name: string): Element | undefined {
  for (const c of stanza.children) {
    if (typeof c !== 'string' && c.name === name && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS_CLIENT)) return c;
  }
  return undefined;
}

function elementChildren(stanza: Element, keep: (el: Element) => boolean): Element[] {
  const out: Element[] = [];
  for (const c of stanza.children) if (typeof c !== 'string' && keep(c)) out.push(c);
  return out;
}

/** What an occupant's presence carries into the room: everything but the MUC elements. */
function presencePayload(stanza: Element): Element[] {
  return elementChildren(stanza, (c) => !(c.name === 'x' && (c.attrs.xmlns === NS_MUC || c.attrs.xmlns === NS_MUC_USER)));
}

function statusOf(stanza: Element | undefined): Element[] {
  return stanza ? elementChildren(stanza, (c) => c.name === 'status' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS_CLIENT)) : [];
}

/** The error reply to a stanza, from the address it was sent to; messages keep their body. */
export function errorFor(stanza: Element, err: StanzaError, by: string, extra: readonly Element[] = []): Element {
  const reply = x(stanza.name, { type: 'error', id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from }, [...extra]);
  if (stanza.name === 'message') reply.append(clientChild(stanza, 'body'));
  return reply.append(err.toElement(by));
}

function errorCondition(stanza: Element): string | undefined {
  const error = clientChild(stanza, 'error');
  return error?.elements.find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name;
}

/** A copy for one recipient: new attributes, the children list copied but the children shared. */
function addressed(el: Element, to: string, id?: string): Element {
  const attrs: Record<string, string> = { ...el.attrs, to };
  if (id !== undefined) attrs.id = id;
  return new Element(el.name, attrs, el.children.slice());
}

function statusElements(codes: Iterable<number>): Element[] {
  return [...new Set(codes)].sort((a, b) => a - b).map((code) => x('status', { code: String(code) }));
}

function parseBoolean(v: string | undefined): boolean | undefined {
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

/** Characters, not UTF-16 units. */
function length(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** XEP-0045 §7.2.1 (no nick), §7.2.9-related policy: no blank nicks, none too long. */
export function checkNick(nick: string, max: number): void {
  if (nick === '') throw new StanzaError('jid-malformed', 'A nickname is needed to enter the room');
  if (nick.trim() === '') throw new StanzaError('not-acceptable', 'A nickname cannot be only spaces');
  if (length(nick) > max) throw new StanzaError('not-acceptable', `A nickname has at most ${max} characters`);
}

export interface RoomInit {
  jid: Jid;
  config: RoomConfig;
  locked?: boolean;
  createdAt?: number;
  /** The real full JID creating the room: its self-presence carries status 201. */
  creator?: string;
}

export class Room {
  /** The room's bare JID. */
  readonly jid: string;
  readonly local: string;
  readonly domain: string;
  config: RoomConfig;
  /** A new room stays locked until its owner configures it (§10.1.2). */
  locked: boolean;
  destroyed = false;
  readonly createdAt: number;
  private creator: string | undefined;
  /** Affiliations other than 'none', by bare JID (or domain). */
  readonly affiliations = new Map<string, AffiliationEntry>();
  /** Reserved nicks (affiliations with a nick) to their bare JID. */
  private readonly reserved = new Map<string, string>();
  readonly occupants = new Map<string, Occupant>();
  /** Occupants by the real full JID of each of their sessions. */
  readonly bySession = new Map<string, Occupant>();
  subject: { text: string; nick: string | null; at: number } | undefined;
  history: HistoryEntry[] = [];
  /** Mediated invitations not answered yet: invitee bare JID → the inviters' JIDs (full and bare). */
  private readonly invited = new Map<string, Set<string>>();
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly host: RoomHost, init: RoomInit) {
    this.jid = init.jid.bareString;
    this.local = init.jid.local;
    this.domain = init.jid.domain;
    this.config = init.config;
    this.locked = init.locked ?? false;
    this.createdAt = init.createdAt ?? Date.now();
    this.creator = init.creator;
  }

  private get api(): ModuleApi<unknown> {
    return this.host.api;
  }

  /** Written to the database: persistent and configured. */
  get stored(): boolean {
    return this.config.persistent && !this.locked;
  }

  get name(): string {
    return this.config.name !== '' ? this.config.name : this.local;
  }

  occupantJid(nick: string): string {
    return this.jid + '/' + nick;
  }

  // ---- serialisation ---------------------------------------------------------

  /**
   * Runs `task` after the room's earlier stanzas, so that every occupant sees the same order.
   * Room tasks never wait for a stanza they send to a room (RoomHost.route), so a task queued
   * from inside another never waits for itself.
   */
  run(task: () => Promise<void>): Promise<void> {
    const next = this.tail.then(task).catch((err: unknown) => {
      this.api.log.error({ err, room: this.jid }, 'room task failed');
    });
    this.tail = next;
    return next;
  }

  /** Runs a stanza's handling, answering a StanzaError (or a bug, as internal-server-error) to its sender. */
  async handle(stanza: Element, fn: () => Promise<void>, extra?: () => Element[]): Promise<void> {
    try {
      await fn();
    } catch (err) {
      let error: StanzaError;
      if (err instanceof StanzaError) error = err;
      else {
        this.api.log.error({ err, room: this.jid, name: stanza.name }, 'MUC stanza handling failed');
        error = new StanzaError('internal-server-error');
      }
      await this.sendError(stanza, error, extra?.());
    }
  }

  async sendError(stanza: Element, err: StanzaError, extra?: readonly Element[]): Promise<void> {
    if (stanza.attrs.type === 'error' || stanza.attrs.from === undefined) return;
    await this.host.route(errorFor(stanza, err, this.jid, extra));
  }

  private send(el: Element, to: string, id?: string): Promise<void> {
    return this.host.route(addressed(el, to, id));
  }

  private async iqResult(stanza: Element, payload?: Element): Promise<void> {
    await this.host.route(x('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from }, payload));
  }

  // ---- affiliations and roles ------------------------------------------------

  affiliationOf(jid: Jid): Affiliation {
    return this.affiliations.get(jid.bareString)?.affiliation
      ?? (this.affiliations.get(jid.domain)?.affiliation === 'outcast' ? 'outcast' : 'none');
  }

  affiliationOfBare(bare: string): Affiliation {
    return this.affiliations.get(bare)?.affiliation ?? 'none';
  }

  owners(): string[] {
    return [...this.affiliations].filter(([, e]) => e.affiliation === 'owner').map(([jid]) => jid).sort();
  }

  /** Sets an affiliation in memory (the caller persists it). */
  setAffiliation(jid: string, affiliation: Affiliation, nick?: string, reason?: string): void {
    const old = this.affiliations.get(jid);
    if (old?.nick !== undefined && this.reserved.get(old.nick) === jid) this.reserved.delete(old.nick);
    if (affiliation === 'none') {
      this.affiliations.delete(jid);
      return;
    }
    const entry: AffiliationEntry = { affiliation };
    if (nick !== undefined) {
      entry.nick = nick;
      this.reserved.set(nick, jid);
    }
    if (reason !== undefined) entry.reason = reason;
    this.affiliations.set(jid, entry);
  }

  reservedNick(bare: string): string | undefined {
    return this.affiliations.get(bare)?.nick;
  }

  private defaultRole(affiliation: Affiliation): Role {
    if (affiliation === 'owner' || affiliation === 'admin') return 'moderator';
    if (affiliation === 'member') return 'participant';
    if (affiliation === 'none') return this.config.moderated ? 'visitor' : 'participant';
    return 'none';
  }

  /** Semi-anonymous rooms show real JIDs to moderators only (§5.2.1). */
  private seesJids(occ: Occupant): boolean {
    return this.config.whois === 'anyone' || occ.role === 'moderator';
  }

  /** Logged (status 170): archived, and there is an archive. */
  get logged(): boolean {
    return this.config.archiving && this.host.archive() !== undefined;
  }

  private affiliationRow(jid: string): AffiliationRow | null {
    const e = this.affiliations.get(jid);
    return e ? { jid, affiliation: e.affiliation, nick: e.nick ?? null, reason: e.reason ?? null } : null;
  }

  snapshot(): StoredRoom {
    return {
      jid: this.jid,
      config: JSON.stringify(this.config),
      subject: this.subject?.text ?? null,
      subjectNick: this.subject?.nick ?? null,
      subjectAt: this.subject?.at ?? null,
      createdAt: this.createdAt,
      affiliations: [...this.affiliations.keys()].sort().map((jid) => this.affiliationRow(jid)!),
      history: this.history.map((h) => ({ xml: h.message.toString(), stamp: h.at })),
    };
  }

  // ---- presence ----------------------------------------------------------------

  private presenceFor(occ: Occupant, opts: PresenceOpts, withJid: boolean, codes: readonly number[]): Element {
    const item = x('item', {
      affiliation: opts.affiliation ?? this.affiliationOfBare(occ.bare),
      jid: withJid ? occ.latest : undefined,
      nick: opts.nick,
      role: opts.role ?? occ.role,
    },
    opts.actor !== undefined ? x('actor', { nick: opts.actor }) : undefined,
    opts.reason !== undefined ? x('reason', null, opts.reason) : undefined);
    const payload = opts.payload ?? (opts.type === 'unavailable' ? [] : occ.payload);
    return x('presence', { from: this.occupantJid(occ.nick), type: opts.type }, payload, x('x', { xmlns: NS_MUC_USER }, item, statusElements(codes)));
  }

  /**
   * Sends an occupant's presence to everyone in the room. At most four stanzas are built (with
   * and without the real JID, the occupant's own, the triggering session's own); each recipient
   * gets a copy that differs only in 'to'.
   */
  private async broadcastPresence(occ: Occupant, opts: PresenceOpts = {}): Promise<void> {
    const codes = opts.codes ?? [];
    let withJid: Element | undefined;
    let withoutJid: Element | undefined;
    let self: Element | undefined;
    let trigger: Element | undefined;
    const sends: Promise<void>[] = [];
    const own = this.seesJids(occ);
    const toSelf = (session: string) => {
      if (opts.trigger && session === opts.trigger.session) {
        trigger ??= this.presenceFor(occ, opts, own, [...codes, Status.Self, ...opts.trigger.codes]);
        sends.push(this.send(trigger, session, opts.trigger.id));
      } else {
        self ??= this.presenceFor(occ, opts, own, [...codes, Status.Self]);
        sends.push(this.send(self, session));
      }
    };
    for (const other of this.occupants.values()) {
      if (other === occ) continue;
      const el = this.seesJids(other)
        ? (withJid ??= this.presenceFor(occ, opts, true, codes))
        : (withoutJid ??= this.presenceFor(occ, opts, false, codes));
      for (const session of other.sessions.keys()) sends.push(this.send(el, session));
    }
    for (const session of occ.sessions.keys()) toSelf(session);
    for (const session of opts.alsoSelf ?? []) toSelf(session);
    await Promise.all(sends);
  }

  /** Removes one session of an occupant (the occupant too when it was the last). */
  private detach(occ: Occupant, session: string): void {
    occ.sessions.delete(session);
    this.bySession.delete(session);
    this.host.left(session, this);
    if (occ.sessions.size === 0) {
      if (this.occupants.get(occ.nick) === occ) this.occupants.delete(occ.nick);
    } else if (occ.latest === session) {
      occ.latest = [...occ.sessions.keys()].pop()!;
    }
  }

  /** A temporary room (or one never configured) goes when its last occupant leaves. */
  private async vanishIfEmpty(): Promise<void> {
    if (this.occupants.size > 0 || this.destroyed) return;
    if (this.config.persistent && !this.locked) return;
    this.destroyed = true;
    this.host.removed(this);
    await this.host.store.deleteRoom(this.jid);
  }

  checkNick(nick: string): void {
    checkNick(nick, this.host.limits.maxNickLength);
  }

  /** Presence to an occupant JID of this room (§7.2 enter, §7.3 update, §7.6 nick change, §7.14 exit). */
  async presence(stanza: Element, from: Jid, nick: string, rawNick: string): Promise<void> {
    const full = from.toString();
    const type = stanza.attrs.type;
    const occ = this.bySession.get(full);
    if (type === 'unavailable') {
      if (occ) await this.leave(occ, full, stanza);
      return;
    }
    if (type === 'error') {
      if (occ) await this.dropSession(occ, full);
      return;
    }
    if (type !== undefined) return; // subscriptions and probes mean nothing to a room
    const mucX = stanza.getChild('x', NS_MUC);
    await this.handle(stanza, async () => {
      this.checkNick(nick);
      if (!occ) return this.join(stanza, from, nick, rawNick);
      if (occ.nick === nick) return this.update(occ, full, stanza);
      return this.changeNick(occ, full, stanza, nick, rawNick);
    }, () => (mucX ? [x('x', { xmlns: NS_MUC })] : []));
  }

  private async join(stanza: Element, from: Jid, nick: string, rawNick: string): Promise<void> {
    const full = from.toString();
    const bare = from.bareString;
    const affiliation = this.affiliationOf(from);
    const privileged = affiliation === 'owner' || affiliation === 'admin';
    const mucX = stanza.getChild('x', NS_MUC);
    // §7.2.11, §7.2.8, §7.2.7, §7.2.6, §7.2.9, §7.2.10, in that order.
    if (this.locked && affiliation !== 'owner') throw new StanzaError('item-not-found', 'The room is locked until its owner configures it');
    if (affiliation === 'outcast') throw new StanzaError('forbidden', 'You are banned from this room');
    if (this.config.membersOnly && RANK[affiliation] < RANK.member) throw new StanzaError('registration-required', 'This room is for members only');
    if (this.config.passwordProtected && !privileged && mucX?.getChildText('password') !== this.config.password) {
      throw new StanzaError('not-authorized', 'This room needs a password');
    }
    const holder = this.occupants.get(nick);
    if (holder && holder.bare !== bare) throw new StanzaError('conflict', 'That nickname is already in use');
    const owner = this.reserved.get(nick);
    if (owner !== undefined && owner !== bare) throw new StanzaError('conflict', 'That nickname is reserved');
    if (!holder && this.occupants.size >= this.config.maxUsers && !privileged) {
      throw new StanzaError('service-unavailable', 'The room is full', 'wait');
    }
    let occ = holder;
    if (!occ) {
      occ = new Occupant(nick, bare, this.defaultRole(affiliation), this.host.limits.messageRatePerSecond);
      this.occupants.set(nick, occ);
    }
    occ.sessions.set(full, presencePayload(stanza));
    occ.latest = full;
    this.bySession.set(full, occ);
    this.host.joined(full, this);
    const created = this.creator === full;
    this.creator = undefined;
    await this.sendRoomState(occ, full, stanza, created, nick !== rawNick);
  }

  /** §7.2.3: the occupants, then the self-presence, then history (§7.2.14), then the subject (§7.2.16). */
  private async sendRoomState(occ: Occupant, full: string, stanza: Element, created: boolean, rewritten: boolean): Promise<void> {
    const sees = this.seesJids(occ);
    for (const other of [...this.occupants.values()]) {
      if (other !== occ) await this.send(this.presenceFor(other, {}, sees, []), full);
    }
    const codes: number[] = [];
    if (this.config.whois === 'anyone') codes.push(Status.NonAnonymous);
    if (this.logged) codes.push(Status.LoggingOn);
    if (created) codes.push(Status.Created);
    if (rewritten) codes.push(Status.NickModified);
    await this.broadcastPresence(occ, { trigger: { session: full, id: stanza.attrs.id, codes } });
    const request = parseHistoryRequest(stanza.getChild('x', NS_MUC)?.getChild('history'));
    for (const message of selectHistory(this.history, request, full)) await this.host.route(message);
    await this.host.route(this.subjectMessage(full));
  }

  private subjectMessage(to: string): Element {
    const s = this.subject;
    return x('message', { from: s?.nick ? this.occupantJid(s.nick) : this.jid, to, type: 'groupchat', id: this.host.newId() },
      x('subject', null, s?.text ?? ''));
  }

  private async update(occ: Occupant, full: string, stanza: Element): Promise<void> {
    occ.sessions.set(full, presencePayload(stanza));
    occ.latest = full;
    // A client that sends the MUC join element again (after losing track) gets the room state again.
    if (stanza.getChild('x', NS_MUC)) return this.sendRoomState(occ, full, stanza, false, false);
    await this.broadcastPresence(occ);
  }

  private async changeNick(occ: Occupant, full: string, stanza: Element, nick: string, rawNick: string): Promise<void> {
    if (this.occupants.has(nick)) throw new StanzaError('conflict', 'That nickname is already in use');
    const owner = this.reserved.get(nick);
    if (owner !== undefined && owner !== occ.bare) throw new StanzaError('conflict', 'That nickname is reserved');
    occ.sessions.set(full, presencePayload(stanza));
    occ.latest = full;
    await this.broadcastPresence(occ, { type: 'unavailable', nick, codes: [Status.NickChanged] });
    this.occupants.delete(occ.nick);
    occ.nick = nick;
    this.occupants.set(nick, occ);
    await this.broadcastPresence(occ, { trigger: { session: full, id: stanza.attrs.id, codes: nick !== rawNick ? [Status.NickModified] : [] } });
  }

  /** §7.14: the session leaves; the occupant too when it was its last session. */
  async leave(occ: Occupant, full: string, stanza?: Element): Promise<void> {
    const status = statusOf(stanza);
    this.detach(occ, full);
    if (occ.sessions.size > 0) {
      await this.send(this.presenceFor(occ, { type: 'unavailable', role: 'none', payload: status }, this.seesJids(occ), [Status.Self]), full);
      await this.broadcastPresence(occ);
    } else {
      await this.broadcastPresence(occ, { type: 'unavailable', role: 'none', payload: status, alsoSelf: [full] });
    }
    await this.vanishIfEmpty();
  }

  /** An occupant's client answered with an error that means it is gone: it is removed (status 333). */
  private async dropSession(occ: Occupant, full: string): Promise<void> {
    this.detach(occ, full);
    if (occ.sessions.size > 0) await this.broadcastPresence(occ);
    else await this.broadcastPresence(occ, { type: 'unavailable', role: 'none', codes: [Status.Error] });
    await this.vanishIfEmpty();
  }

  /** Removes an occupant with all its sessions (kick, ban, membership loss). */
  private async remove(occ: Occupant, opts: { codes: number[]; affiliation?: Affiliation; actor?: string; reason?: string }): Promise<void> {
    const sessions = [...occ.sessions.keys()];
    for (const s of sessions) this.detach(occ, s);
    await this.broadcastPresence(occ, { type: 'unavailable', role: 'none', alsoSelf: sessions, ...opts });
  }

  // ---- messages ----------------------------------------------------------------

  async message(stanza: Element, from: Jid, nick: string): Promise<void> {
    const type = stanza.attrs.type ?? 'normal';
    const full = from.toString();
    const occ = this.bySession.get(full);
    if (type === 'error') return this.messageError(stanza, occ, full, nick);
    await this.handle(stanza, async () => {
      if (nick !== '') return this.privateMessage(stanza, occ, nick);
      if (type === 'groupchat') return this.groupchat(stanza, occ);
      const userX = stanza.getChild('x', NS_MUC_USER);
      if (userX && (userX.getChild('invite') || userX.getChild('decline'))) return this.invitations(stanza, from, occ, userX);
      const form = stanza.getChild('x', NS_DATA);
      if (form && formValues(form).get('FORM_TYPE')?.[0] === NS_MUC_REQUEST) return this.voiceRequest(form, occ);
      throw new StanzaError('bad-request', 'Messages to the room must be of type groupchat');
    });
  }

  private consume(occ: Occupant): void {
    if (!occ.consume()) throw new StanzaError('resource-constraint', 'You are sending messages too fast', 'wait');
  }

  /** The message as the room sends it: from the occupant JID, MUC and spoofable elements removed. */
  private reflect(stanza: Element, nick: string, type: string | undefined): Element {
    const children = stanza.children.filter((c) => typeof c === 'string' || !(
      (c.name === 'x' && c.attrs.xmlns === NS_MUC_USER) || (c.name === 'stanza-id' && c.attrs.xmlns === NS_SID && c.attrs.by === this.jid)));
    return x('message', { from: this.occupantJid(nick), type, id: stanza.attrs.id }, children);
  }

  /** §7.4 (messages to all occupants) and §8.1 (subject). */
  private async groupchat(stanza: Element, occ: Occupant | undefined): Promise<void> {
    if (!occ) throw new StanzaError('not-acceptable', 'Only occupants may send messages to the room');
    const body = clientChild(stanza, 'body');
    const subject = clientChild(stanza, 'subject');
    const isSubject = subject !== undefined && body === undefined && clientChild(stanza, 'thread') === undefined;
    if (isSubject) {
      if (!(occ.role === 'moderator' || (this.config.changeSubject && occ.role === 'participant'))) {
        throw new StanzaError('forbidden', 'You may not change the subject of this room');
      }
      if (length(subject.text()) > this.host.limits.maxSubjectLength) throw new StanzaError('not-acceptable', 'The subject is too long');
    } else if (occ.role === 'visitor') {
      throw new StanzaError('forbidden', 'Visitors may not send messages in a moderated room');
    }
    this.consume(occ);
    const now = Date.now();
    const reflected = this.reflect(stanza, occ.nick, 'groupchat');
    if (isSubject) {
      this.subject = { text: subject.text(), nick: occ.nick, at: now };
      if (this.stored) await this.host.store.saveSubject(this.jid, this.subject.text, occ.nick, now);
      return this.fanout(reflected);
    }
    if (body !== undefined) {
      const archive = this.logged ? this.host.archive() : undefined;
      if (archive) {
        try {
          const id = await archive.append(this.jid, { with: this.occupantJid(occ.nick), stanza: reflected, direction: 'in', at: now });
          reflected.append(x('stanza-id', { xmlns: NS_SID, id, by: this.jid }));
        } catch (err) {
          this.api.log.error({ err, room: this.jid }, 'could not archive a groupchat message');
        }
      }
      if (this.config.historyLength > 0 && !stanza.getChild('no-store', NS_HINTS) && !stanza.getChild('no-permanent-store', NS_HINTS)) {
        await this.addHistory(reflected, now);
      }
    }
    await this.fanout(reflected);
  }

  private async addHistory(message: Element, at: number): Promise<void> {
    this.history.push(historyEntry(message, at, this.jid));
    const excess = this.history.length - this.config.historyLength;
    if (excess > 0) this.history.splice(0, excess);
    if (this.stored) await this.host.store.appendHistory(this.jid, { xml: message.toString(), stamp: at }, this.config.historyLength);
  }

  /** One stanza to every session in the room: built once, copied per recipient with its own 'to'. */
  private async fanout(el: Element): Promise<void> {
    const sends: Promise<void>[] = [];
    for (const occ of this.occupants.values()) for (const session of occ.sessions.keys()) sends.push(this.send(el, session));
    await Promise.all(sends);
  }

  private mayPm(occ: Occupant): boolean {
    switch (this.config.allowPm) {
      case 'anyone': return true;
      case 'participants': return occ.role === 'participant' || occ.role === 'moderator';
      case 'moderators': return occ.role === 'moderator';
      case 'none': return false;
    }
  }

  /** §7.5: private messages, to every session of the addressed occupant. */
  private async privateMessage(stanza: Element, occ: Occupant | undefined, nick: string): Promise<void> {
    const type = stanza.attrs.type;
    if (type === 'groupchat') throw new StanzaError('bad-request', 'Groupchat messages go to the room, not to an occupant');
    if (!occ) throw new StanzaError('not-acceptable', 'Only occupants may send private messages');
    const target = this.occupants.get(nick);
    if (!target) throw new StanzaError('item-not-found', 'No occupant has that nickname');
    if (!this.mayPm(occ)) throw new StanzaError('forbidden', 'Private messages are not allowed in this room');
    this.consume(occ);
    const pm = this.reflect(stanza, occ.nick, type).append(x('x', { xmlns: NS_MUC_USER }));
    await Promise.all([...target.sessions.keys()].map((s) => this.send(pm, s)));
  }

  /** Errors from occupants: a gone client is removed; other errors to a nick are relayed (private messages). */
  private async messageError(stanza: Element, occ: Occupant | undefined, full: string, nick: string): Promise<void> {
    if (!occ) return;
    const condition = errorCondition(stanza);
    if (condition !== undefined && GONE_CONDITIONS.has(condition)) return this.dropSession(occ, full);
    const target = nick !== '' ? this.occupants.get(nick) : undefined;
    if (!target) return;
    const relayed = x('message', { from: this.occupantJid(occ.nick), type: 'error', id: stanza.attrs.id }, stanza.children);
    await Promise.all([...target.sessions.keys()].map((s) => this.send(relayed, s)));
  }

  /** §7.8.2 mediated invitations and §7.8.2 declines. */
  private async invitations(stanza: Element, from: Jid, occ: Occupant | undefined, userX: Element): Promise<void> {
    for (const invite of userX.getChildren('invite')) {
      if (!occ) throw new StanzaError('not-acceptable', 'Only occupants may invite to the room');
      const affiliation = this.affiliationOf(from);
      const privileged = affiliation === 'owner' || affiliation === 'admin';
      if (!privileged && !this.config.allowInvites) throw new StanzaError('forbidden', 'Only admins and owners may invite to this room');
      const invitee = Jid.tryParse(invite.attrs.to);
      if (!invitee) throw new StanzaError('jid-malformed', 'The invitee is not a valid JID');
      // §7.8.2: a JID that does not exist is refused (a local one: no account and no session, e.g. an anonymous one gone).
      if (this.api.isLocalDomain(invitee.domain) && (invitee.local === ''
        || (this.api.sessions.ofAccount(invitee.bareString).length === 0 && !(await this.api.accounts.exists(invitee.bareString))))) {
        throw new StanzaError('item-not-found', 'There is no such user to invite');
      }
      this.consume(occ);
      // A members-only room adds the invitee to its members (§7.8.2).
      if (this.config.membersOnly && this.affiliationOf(invitee) === 'none') {
        this.setAffiliation(invitee.bareString, 'member');
        if (this.stored) await this.host.store.setAffiliations(this.jid, [{ jid: invitee.bareString, row: this.affiliationRow(invitee.bareString) }]);
      }
      this.remember(invitee.bareString, from);
      const reason = invite.getChild('reason');
      await this.host.route(x('message', { from: this.jid, to: invitee.toString(), id: stanza.attrs.id ?? this.host.newId() },
        x('x', { xmlns: NS_MUC_USER },
          x('invite', { from: from.toString() }, reason ? x('reason', null, reason.text()) : undefined),
          this.config.passwordProtected ? x('password', null, this.config.password) : undefined)));
    }
    for (const decline of userX.getChildren('decline')) {
      const inviter = Jid.tryParse(decline.attrs.to);
      if (!inviter) throw new StanzaError('jid-malformed', 'The inviter is not a valid JID');
      // Only to someone who invited the decliner: the room relays nothing else.
      const inviters = this.invited.get(from.bareString);
      if (!inviters || !(inviters.has(inviter.toString()) || inviters.has(inviter.bareString))) continue;
      this.invited.delete(from.bareString);
      const reason = decline.getChild('reason');
      await this.host.route(x('message', { from: this.jid, to: inviter.toString(), id: stanza.attrs.id ?? this.host.newId() },
        x('x', { xmlns: NS_MUC_USER }, x('decline', { from: from.bareString }, reason ? x('reason', null, reason.text()) : undefined))));
    }
  }

  private remember(invitee: string, inviter: Jid): void {
    if (this.invited.size >= 1000 && !this.invited.has(invitee)) this.invited.delete(this.invited.keys().next().value!);
    const set = this.invited.get(invitee) ?? new Set<string>();
    set.add(inviter.toString()).add(inviter.bareString);
    this.invited.set(invitee, set);
  }

  /** §7.13 (a visitor requests voice) and §8.6 (a moderator approves it). */
  private async voiceRequest(form: Element, occ: Occupant | undefined): Promise<void> {
    if (!occ) throw new StanzaError('not-acceptable', 'Only occupants may request voice');
    const values = formValues(form);
    const allow = values.get('muc#request_allow');
    if (allow !== undefined) {
      if (occ.role !== 'moderator') throw new StanzaError('forbidden', 'Only moderators may approve voice requests');
      const target = this.occupants.get(values.get('muc#roomnick')?.[0] ?? '');
      if (parseBoolean(allow[0]) !== true || !target || target.role !== 'visitor') return;
      target.role = 'participant';
      await this.broadcastPresence(target);
      return;
    }
    if (values.get('muc#role')?.[0] !== 'participant' || occ.role !== 'visitor') return;
    this.consume(occ);
    const request = x('x', { xmlns: NS_DATA, type: 'form' },
      x('title', null, 'Voice request'),
      x('instructions', null, 'To grant this person voice, set "Grant voice" and submit the form.'),
      x('field', { var: 'FORM_TYPE', type: 'hidden' }, x('value', null, NS_MUC_REQUEST)),
      x('field', { var: 'muc#role', type: 'list-single', label: 'Requested role' }, x('value', null, 'participant')),
      x('field', { var: 'muc#jid', type: 'jid-single', label: 'User ID' }, x('value', null, occ.latest)),
      x('field', { var: 'muc#roomnick', type: 'text-single', label: 'Nickname' }, x('value', null, occ.nick)),
      x('field', { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice' }, x('value', null, 'false')));
    const message = x('message', { from: this.jid, id: this.host.newId() }, request);
    const sends: Promise<void>[] = [];
    for (const m of this.occupants.values()) if (m.role === 'moderator') for (const s of m.sessions.keys()) sends.push(this.send(message, s));
    await Promise.all(sends);
  }

  // ---- IQs -----------------------------------------------------------------------

  /** IQs to the room itself. */
  async iq(stanza: Element, from: Jid, payload: Element): Promise<void> {
    const type = stanza.attrs.type;
    const ns = payload.attrs.xmlns;
    await this.handle(stanza, async () => {
      if (type === 'get' && payload.name === 'query' && ns === NS_DISCO_INFO) return this.iqResult(stanza, this.discoInfo(from, payload));
      if (type === 'get' && payload.name === 'query' && ns === NS_DISCO_ITEMS) {
        if (this.locked && this.affiliationOf(from) !== 'owner') throw new StanzaError('item-not-found');
        return this.iqResult(stanza, x('query', { xmlns: NS_DISCO_ITEMS, node: payload.attrs.node }));
      }
      if (payload.name === 'query' && ns === NS_MUC_ADMIN) {
        return type === 'get' ? this.iqResult(stanza, this.adminList(from, payload)) : this.adminSet(stanza, from, payload);
      }
      if (payload.name === 'query' && ns === NS_MUC_OWNER) return this.owner(stanza, from, payload, type === 'get');
      if (type === 'get' && payload.name === 'ping' && ns === NS_PING) return this.iqResult(stanza);
      throw new StanzaError('service-unavailable');
    });
  }

  features(): string[] {
    const c = this.config;
    const out = [
      NS_MUC, NS_MUC_STABLE_ID, NS_MUC_SELF_PING, NS_MUC_REQUEST, NS_DISCO_INFO, NS_PING,
      c.persistent ? 'muc_persistent' : 'muc_temporary',
      c.public ? 'muc_public' : 'muc_hidden',
      c.membersOnly ? 'muc_membersonly' : 'muc_open',
      c.passwordProtected ? 'muc_passwordprotected' : 'muc_unsecured',
      c.moderated ? 'muc_moderated' : 'muc_unmoderated',
      c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    ];
    if (this.logged) out.push(NS_MAM, NS_SID);
    return out.sort();
  }

  /** §6.4 room information; §7.12 the requester's reserved nick (node x-roomuser-item). */
  private discoInfo(from: Jid, payload: Element): Element {
    if (this.locked && this.affiliationOf(from) !== 'owner') throw new StanzaError('item-not-found');
    const node = payload.attrs.node;
    if (node === 'x-roomuser-item') {
      const nick = this.reservedNick(from.bareString);
      return x('query', { xmlns: NS_DISCO_INFO, node }, nick !== undefined ? x('identity', { category: 'conference', name: nick, type: 'text' }) : undefined);
    }
    if (node !== undefined) throw new StanzaError('item-not-found', 'No such node');
    return x('query', { xmlns: NS_DISCO_INFO },
      x('identity', { category: 'conference', name: this.name, type: 'text' }),
      this.features().map((f) => x('feature', { var: f })),
      roomInfoForm(this.config, this.subject?.text ?? '', this.occupants.size, this.config.changeSubject));
  }

  private requesterRole(from: Jid): Role {
    return this.bySession.get(from.toString())?.role ?? 'none';
  }

  /** §8.5, §9.2, §9.5, §9.8, §10.5, §10.8: lists by role or affiliation. */
  private adminList(from: Jid, query: Element): Element {
    const items = query.getChildren('item');
    if (items.length !== 1) throw new StanzaError('bad-request', 'Ask for one list: one <item/> with a role or an affiliation');
    const { role, affiliation } = items[0]!.attrs;
    const actorAffiliation = this.affiliationOf(from);
    if (role !== undefined && affiliation === undefined) {
      if (!ROLES.includes(role as Role) || role === 'none') throw new StanzaError('bad-request', 'Unknown role');
      if (this.requesterRole(from) !== 'moderator') throw new StanzaError('forbidden', 'Only moderators may list occupants by role');
      const occupants = [...this.occupants.values()].filter((o) => o.role === role).sort((a, b) => (a.nick < b.nick ? -1 : a.nick > b.nick ? 1 : 0));
      return x('query', { xmlns: NS_MUC_ADMIN }, occupants.map((o) =>
        x('item', { affiliation: this.affiliationOfBare(o.bare), jid: o.latest, nick: o.nick, role: o.role })));
    }
    if (affiliation !== undefined && role === undefined) {
      if (!AFFILIATIONS.includes(affiliation as Affiliation) || affiliation === 'none') throw new StanzaError('bad-request', 'Unknown affiliation');
      const needed: Affiliation = affiliation === 'owner' || affiliation === 'admin' ? 'owner' : 'admin';
      if (RANK[actorAffiliation] < RANK[needed]) throw new StanzaError('forbidden', `Only ${needed}s may see that list`);
      const jids = [...this.affiliations].filter(([, e]) => e.affiliation === affiliation).map(([jid]) => jid).sort();
      return x('query', { xmlns: NS_MUC_ADMIN }, jids.map((jid) => {
        const e = this.affiliations.get(jid)!;
        return x('item', { affiliation, jid, nick: e.nick }, e.reason !== undefined ? x('reason', null, e.reason) : undefined);
      }));
    }
    throw new StanzaError('bad-request', 'An item names either a role or an affiliation');
  }

  /** §8.2-§8.4, §9.1, §9.3-§9.7, §10.3-§10.8: role and affiliation changes, all or nothing. */
  private async adminSet(stanza: Element, from: Jid, query: Element): Promise<void> {
    const items = query.getChildren('item');
    if (items.length === 0) throw new StanzaError('bad-request', 'No <item/> to change');
    const actor = this.bySession.get(from.toString());
    const actorRole = actor?.role ?? 'none';
    const actorAffiliation = this.affiliationOf(from);
    type RoleChange = { target: Occupant; role: Role; reason?: string };
    type AffChange = { jid: string; affiliation: Affiliation; nick?: string; reason?: string };
    const roles: RoleChange[] = [];
    const affs: AffChange[] = [];
    for (const item of items) {
      const { role, affiliation, nick, jid } = item.attrs;
      const reason = item.getChild('reason')?.text();
      if (role !== undefined && affiliation !== undefined) throw new StanzaError('bad-request', 'An item changes either a role or an affiliation');
      if (role !== undefined) {
        if (!ROLES.includes(role as Role)) throw new StanzaError('bad-request', 'Unknown role');
        if (nick === undefined) throw new StanzaError('bad-request', 'A role change names the occupant by nick');
        const target = this.occupants.get(nick);
        if (!target) throw new StanzaError('item-not-found', 'No occupant has that nickname');
        this.checkRoleChange(actor, actorRole, actorAffiliation, target, role as Role);
        roles.push({ target, role: role as Role, reason });
      } else if (affiliation !== undefined) {
        if (!AFFILIATIONS.includes(affiliation as Affiliation)) throw new StanzaError('bad-request', 'Unknown affiliation');
        let bare: string;
        let reserve: string | undefined;
        if (jid !== undefined) {
          const parsed = Jid.tryParse(jid);
          if (!parsed) throw new StanzaError('jid-malformed', 'Not a valid JID');
          bare = parsed.bareString;
          if (nick !== undefined) {
            this.checkNick(nick);
            const holder = this.reserved.get(nick);
            if (holder !== undefined && holder !== bare) throw new StanzaError('conflict', 'That nickname is reserved by someone else');
            reserve = nick;
          }
        } else if (nick !== undefined) {
          const target = this.occupants.get(nick);
          if (!target) throw new StanzaError('item-not-found', 'No occupant has that nickname');
          bare = target.bare;
        } else {
          throw new StanzaError('bad-request', 'An affiliation change names a JID');
        }
        this.checkAffiliationChange(actorAffiliation, this.affiliationOfBare(bare), affiliation as Affiliation);
        affs.push({ jid: bare, affiliation: affiliation as Affiliation, nick: reserve, reason });
      } else {
        throw new StanzaError('bad-request', 'An item names a role or an affiliation');
      }
    }
    // §10.4: the room keeps at least one owner.
    if (affs.length > 0) {
      const owners = new Set(this.owners());
      for (const a of affs) {
        if (a.affiliation === 'owner') owners.add(a.jid);
        else owners.delete(a.jid);
      }
      if (owners.size === 0) throw new StanzaError('conflict', 'The room must keep at least one owner');
    }

    // Apply.
    const actorNick = actor?.nick;
    for (const a of affs) this.setAffiliation(a.jid, a.affiliation, a.nick ?? (a.affiliation === 'none' || a.affiliation === 'outcast' ? undefined : this.reservedNick(a.jid)), a.affiliation === 'outcast' ? a.reason : undefined);
    if (this.stored && affs.length > 0) {
      await this.host.store.setAffiliations(this.jid, affs.map((a) => ({ jid: a.jid, row: this.affiliationRow(a.jid) })));
    }
    await this.iqResult(stanza);
    for (const { target, role, reason } of roles) {
      if (!this.occupants.has(target.nick) || this.occupants.get(target.nick) !== target) continue;
      if (role === 'none') {
        await this.remove(target, { codes: [Status.Kicked], actor: actorNick, reason });
      } else if (target.role !== role) {
        target.role = role;
        await this.broadcastPresence(target, { reason });
      }
    }
    for (const a of affs) await this.affiliationChanged(a.jid, a.affiliation, actorNick, a.reason);
    await this.vanishIfEmpty();
  }

  private checkRoleChange(actor: Occupant | undefined, actorRole: Role, actorAffiliation: Affiliation, target: Occupant, role: Role): void {
    const privileged = RANK[actorAffiliation] >= RANK.admin;
    if (actorRole !== 'moderator' && !privileged) throw new StanzaError('forbidden', 'Only moderators may change roles');
    const targetAffiliation = this.affiliationOfBare(target.bare);
    if (role === 'moderator') {
      if (!privileged) throw new StanzaError('forbidden', 'Only admins and owners may grant moderator status');
      return;
    }
    if (role === 'none' && target === actor) throw new StanzaError('conflict', 'You cannot kick yourself');
    // §8.2: nobody is kicked by someone of lower affiliation; §8.4, §9.7: admins and owners keep voice and moderator status.
    if (RANK[targetAffiliation] > RANK[actorAffiliation]) throw new StanzaError('not-allowed', 'That occupant has a higher affiliation than you');
    if (role !== 'none' && (targetAffiliation === 'admin' || targetAffiliation === 'owner')) {
      throw new StanzaError('not-allowed', 'Admins and owners keep their moderator status');
    }
    if (target.role === 'moderator' && !privileged) throw new StanzaError('not-allowed', 'Only admins and owners may act on a moderator');
  }

  private checkAffiliationChange(actor: Affiliation, current: Affiliation, next: Affiliation): void {
    if (RANK[actor] < RANK.admin) throw new StanzaError('forbidden', 'Only admins and owners may change affiliations');
    if (actor === 'owner') return;
    if (next === 'owner' || next === 'admin') throw new StanzaError('forbidden', 'Only owners may grant admin or owner status');
    if (current === 'owner' || current === 'admin') throw new StanzaError('not-allowed', 'Only owners may change the affiliation of admins and owners');
  }

  /** The consequences of an affiliation change for the occupants it concerns (§9.1, §9.4, §10.3 ...). */
  private async affiliationChanged(jid: string, affiliation: Affiliation, actor: string | undefined, reason: string | undefined): Promise<void> {
    const isDomain = !jid.includes('@');
    const affected = [...this.occupants.values()].filter((o) => (isDomain ? o.bare.slice(o.bare.indexOf('@') + 1) === jid : o.bare === jid));
    for (const occ of affected) {
      if (affiliation === 'outcast') {
        await this.remove(occ, { codes: [Status.Banned], affiliation: 'outcast', actor, reason });
        continue;
      }
      if (isDomain) continue;
      if (this.config.membersOnly && RANK[affiliation] < RANK.member) {
        await this.remove(occ, { codes: [Status.AffiliationChange], affiliation, actor, reason });
        continue;
      }
      let role = occ.role;
      if (affiliation === 'owner' || affiliation === 'admin') role = 'moderator';
      else if (occ.role === 'moderator' || (affiliation === 'member' && occ.role === 'visitor')) role = this.defaultRole(affiliation);
      occ.role = role;
      await this.broadcastPresence(occ, { reason });
    }
  }

  /** §10.1-§10.2 configuration, §10.9 destruction. */
  private async owner(stanza: Element, from: Jid, query: Element, get: boolean): Promise<void> {
    if (this.affiliationOf(from) !== 'owner') throw new StanzaError('forbidden', 'Only owners may configure the room');
    if (get) {
      return this.iqResult(stanza, x('query', { xmlns: NS_MUC_OWNER }, configForm(this.jid, this.config, this.host.limits)));
    }
    const destroy = query.getChild('destroy');
    if (destroy) {
      const alt = destroy.attrs.jid;
      if (alt !== undefined && !Jid.tryParse(alt)) throw new StanzaError('jid-malformed', 'The alternate venue is not a valid JID');
      await this.destroy(destroy.getChild('reason')?.text(), alt, destroy.getChild('password')?.text());
      return this.iqResult(stanza);
    }
    const form = query.getChild('x', NS_DATA);
    if (!form) throw new StanzaError('bad-request', 'Send a data form or <destroy/>');
    if (form.attrs.type === 'cancel') {
      // §10.1.2: cancelling the initial configuration destroys the new room.
      if (this.locked) await this.destroy();
      return this.iqResult(stanza);
    }
    if (form.attrs.type !== 'submit') throw new StanzaError('bad-request', 'The form must be of type submit or cancel');
    await this.configure(applyConfigForm(this.config, form, this.host.limits), () => this.iqResult(stanza));
  }

  /** Applies a new configuration: unlock, persistence, history length, members-only, notification (§10.2.1). */
  async configure(next: RoomConfig, acknowledge: () => Promise<void> = async () => {}): Promise<void> {
    const before = this.config;
    const wasLocked = this.locked;
    const wasStored = this.stored;
    const wasLogged = this.logged;
    this.config = next;
    this.locked = false;
    if (this.history.length > next.historyLength) this.history.splice(0, this.history.length - next.historyLength);
    const store = this.host.store;
    if (this.stored && !wasStored) await store.saveRoom(this.snapshot());
    else if (this.stored) {
      await store.saveConfig(this.jid, JSON.stringify(next));
      if (next.historyLength < before.historyLength) await store.trimHistory(this.jid, next.historyLength);
    } else if (wasStored) await store.deleteRoom(this.jid);
    await acknowledge();
    if (next.membersOnly && !before.membersOnly) {
      for (const occ of [...this.occupants.values()]) {
        if (RANK[this.affiliationOfBare(occ.bare)] < RANK.member) await this.remove(occ, { codes: [Status.MembersOnly] });
      }
    }
    if (!wasLocked) {
      const codes: number[] = [Status.ConfigChanged];
      if (this.logged !== wasLogged) codes.push(this.logged ? Status.LoggingOn : Status.LoggingOff);
      if (next.whois !== before.whois) codes.push(next.whois === 'anyone' ? Status.NowNonAnonymous : Status.NowSemiAnonymous);
      await this.fanout(x('message', { from: this.jid, type: 'groupchat', id: this.host.newId() }, x('x', { xmlns: NS_MUC_USER }, statusElements(codes))));
    }
    await this.vanishIfEmpty();
  }

  /** §10.9: every occupant learns that the room is gone (and where to go); nothing of it is kept. */
  async destroy(reason?: string, alternate?: string, password?: string): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.host.removed(this);
    const xEl = x('x', { xmlns: NS_MUC_USER },
      x('item', { affiliation: 'none', role: 'none' }),
      x('destroy', { jid: alternate },
        reason !== undefined ? x('reason', null, reason) : undefined,
        password !== undefined ? x('password', null, password) : undefined));
    const sends: Promise<void>[] = [];
    for (const occ of [...this.occupants.values()]) {
      const presence = x('presence', { from: this.occupantJid(occ.nick), type: 'unavailable' }, xEl);
      for (const session of [...occ.sessions.keys()]) {
        sends.push(this.send(presence, session));
        this.detach(occ, session);
      }
    }
    await Promise.all(sends);
    await this.host.store.deleteRoom(this.jid);
  }

  /** IQs to an occupant JID: self-ping (XEP-0410) answered here, the rest forwarded (§7.2). */
  async occupantIq(stanza: Element, from: Jid, nick: string, payload: Element): Promise<void> {
    const full = from.toString();
    const sender = this.bySession.get(full);
    await this.handle(stanza, async () => {
      // XEP-0410 §3.3: not-acceptable (cancel) tells a client that it is not joined.
      if (!sender) throw new StanzaError('not-acceptable', 'You are not in this room', 'cancel');
      if (sender.nick === nick && payload.name === 'ping' && payload.attrs.xmlns === NS_PING) return this.iqResult(stanza);
      const target = this.occupants.get(nick);
      if (!target) throw new StanzaError('item-not-found', 'No occupant has that nickname');
      // vCards are the account's, asked of its server (XEP-0045 §17.3).
      const to = payload.attrs.xmlns === NS_VCARD ? target.bare : target.latest;
      const occupantJid = this.occupantJid(nick);
      const id = this.host.forwardIq(this, { requester: full, id: stanza.attrs.id!, occupantJid, target: to, at: Date.now() });
      await this.host.route(new Element('iq', { type: stanza.attrs.type!, id, from: this.occupantJid(sender.nick), to }, stanza.children.slice()));
    });
  }

  /** The answer to a forwarded IQ goes back to whoever asked, from the occupant JID it asked. */
  async iqResponse(stanza: Element, from: Jid): Promise<void> {
    const entry = this.host.takeForwardedIq(this, stanza.attrs.id ?? '', from.toString());
    if (!entry) return;
    await this.host.route(new Element('iq', { type: stanza.attrs.type!, id: entry.id, from: entry.occupantJid, to: entry.requester }, stanza.children.slice()));
  }

  /** XEP-0313 queries of the room's archive: anyone in an open public room, else occupants and members. */
  async mam(stanza: Element, from: Jid, payload: Element): Promise<void> {
    await this.handle(stanza, async () => {
      const archive = this.logged ? this.host.archive() : undefined;
      if (!archive) throw new StanzaError('service-unavailable', 'This room has no archive');
      const affiliation = this.affiliationOf(from);
      if (affiliation === 'outcast') throw new StanzaError('forbidden', 'You are banned from this room');
      if ((this.config.membersOnly || !this.config.public) && !this.bySession.has(from.toString()) && RANK[affiliation] < RANK.member) {
        throw new StanzaError('forbidden', 'Only occupants and members may search the archive of this room');
      }
      if (stanza.attrs.type === 'get') {
        return this.iqResult(stanza, x('query', { xmlns: NS_MAM }, x('x', { xmlns: NS_DATA, type: 'form' },
          x('field', { type: 'hidden', var: 'FORM_TYPE' }, x('value', null, NS_MAM)),
          x('field', { type: 'jid-single', var: 'with' }),
          x('field', { type: 'text-single', var: 'start' }),
          x('field', { type: 'text-single', var: 'end' }))));
      }
      const fin = await archive.query(this.jid, payload, from);
      await this.iqResult(stanza, fin);
    });
  }

  /** Server-side removal of a session that ended (when the presence module did not already do it). */
  async sessionEnded(full: string): Promise<void> {
    const occ = this.bySession.get(full);
    if (occ) await this.leave(occ, full);
  }

  /** Removes a deleted account's affiliation (its sessions have already left). */
  forget(bare: string): void {
    if (this.affiliations.has(bare)) this.setAffiliation(bare, 'none');
  }

  // ---- the CLI and restore -------------------------------------------------------

  restore(stored: StoredRoom, parse: (xml: string) => Element | undefined): void {
    for (const a of stored.affiliations) this.setAffiliation(a.jid, a.affiliation, a.nick ?? undefined, a.reason ?? undefined);
    if (stored.subject !== null) this.subject = { text: stored.subject, nick: stored.subjectNick, at: stored.subjectAt ?? stored.createdAt };
    const keep = this.config.historyLength;
    for (const h of keep > 0 ? stored.history.slice(-keep) : []) {
      const el = parse(h.xml);
      if (el) this.history.push(historyEntry(el, h.stamp, this.jid));
    }
  }

  /** Occupants for the CLI. */
  occupantList(): { nick: string; jid: string; sessions: string[]; role: Role; affiliation: Affiliation }[] {
    return [...this.occupants.values()].map((o) => ({
      nick: o.nick, jid: o.bare, sessions: [...o.sessions.keys()], role: o.role, affiliation: this.affiliationOfBare(o.bare),
    }));
  }
}
