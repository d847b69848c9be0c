// XEP-0045 §10.2 room configuration (muc#roomconfig, a XEP-0004 data form) and §6.4 room information (muc#roominfo).
import { StanzaError, x, type Element } from '../../src';
import { NS_DATA, NS_MUC_ROOMCONFIG } from './ns';

export type Whois = 'moderators' | 'anyone';
export type AllowPm = 'anyone' | 'participants' | 'moderators' | 'none';

export interface RoomConfig {
  name: string;
  description: string;
  persistent: boolean;
  /** Listed in the service's disco#items (muc_public) or not (muc_hidden). */
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  passwordProtected: boolean;
  password: string;
  /** Most occupants; owners and admins may enter beyond it. */
  maxUsers: number;
  /** Who sees occupants' real JIDs: semi-anonymous ('moderators') or non-anonymous ('anyone'). */
  whois: Whois;
  /** Roles that may send private messages. */
  allowPm: AllowPm;
  /** Whether occupants (not only admins and owners) may invite others. */
  allowInvites: boolean;
  /** Whether participants (not only moderators) may change the subject. */
  changeSubject: boolean;
  /** Messages kept and sent as history on join (muc#maxhistoryfetch). */
  historyLength: number;
  /** Groupchat messages go to the message archive (XEP-0313), when there is one. */
  archiving: boolean;
}

/** The service-wide limits a configuration must stay within. */
export interface ConfigLimits {
  maxOccupants: number;
  maxHistory: number;
  maxSubjectLength: number;
}

export function defaultConfig(limits: ConfigLimits, persistent: boolean): RoomConfig {
  return {
    name: '',
    description: '',
    persistent,
    public: true,
    membersOnly: false,
    moderated: false,
    passwordProtected: false,
    password: '',
    maxUsers: limits.maxOccupants,
    whois: 'moderators',
    allowPm: 'anyone',
    allowInvites: true,
    changeSubject: false,
    historyLength: limits.maxHistory,
    archiving: true,
  };
}

/** A stored configuration (JSON) read back over the defaults, so fields added later get their default. */
export function restoreConfig(json: string, limits: ConfigLimits): RoomConfig {
  const base = defaultConfig(limits, true);
  let stored: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(json);
    if (parsed && typeof parsed === 'object') stored = parsed as Record<string, unknown>;
  } catch {
    /* unreadable: defaults */
  }
  const out = { ...base } as Record<string, unknown>;
  for (const key of Object.keys(base)) {
    const v = stored[key];
    if (v !== undefined && typeof v === typeof (base as unknown as Record<string, unknown>)[key]) out[key] = v;
  }
  const cfg = out as unknown as RoomConfig;
  cfg.maxUsers = clampInt(cfg.maxUsers, 1, limits.maxOccupants);
  cfg.historyLength = clampInt(cfg.historyLength, 0, limits.maxHistory);
  if (!['moderators', 'anyone'].includes(cfg.whois)) cfg.whois = 'moderators';
  if (!['anyone', 'participants', 'moderators', 'none'].includes(cfg.allowPm)) cfg.allowPm = 'anyone';
  return cfg;
}

function clampInt(n: number, min: number, max: number): number {
  return Number.isInteger(n) ? Math.min(Math.max(n, min), max) : max;
}

const bool = (b: boolean) => (b ? '1' : '0');

function field(type: string, v: string, label: string, values: readonly string[], options?: readonly [string, string][]): Element {
  return x('field', { type, var: v, label },
    options?.map(([value, l]) => x('option', { label: l }, x('value', null, value))),
    values.map((value) => x('value', null, value)));
}

/** The owner's form (§10.1.3, §10.2), filled with the current configuration. */
export function configForm(roomJid: string, cfg: RoomConfig, limits: ConfigLimits): Element {
  const sizes = [10, 20, 30, 50, 100, 200, 500, 1000].filter((n) => n < limits.maxOccupants);
  sizes.push(limits.maxOccupants);
  return x('x', { xmlns: NS_DATA, type: 'form' },
    x('title', null, `Configuration for ${roomJid}`),
    x('instructions', null, 'Complete this form to change the room configuration, or submit it as it is to accept it.'),
    x('field', { type: 'hidden', var: 'FORM_TYPE' }, x('value', null, NS_MUC_ROOMCONFIG)),
    field('text-single', 'muc#roomconfig_roomname', 'Room name', [cfg.name]),
    field('text-single', 'muc#roomconfig_roomdesc', 'Room description', [cfg.description]),
    field('boolean', 'muc#roomconfig_persistentroom', 'Keep the room when the last occupant leaves', [bool(cfg.persistent)]),
    field('boolean', 'muc#roomconfig_publicroom', 'List the room in the public directory', [bool(cfg.public)]),
    field('boolean', 'muc#roomconfig_membersonly', 'Only members may enter', [bool(cfg.membersOnly)]),
    field('boolean', 'muc#roomconfig_moderatedroom', 'Only occupants with voice may send messages', [bool(cfg.moderated)]),
    field('boolean', 'muc#roomconfig_passwordprotectedroom', 'A password is required to enter', [bool(cfg.passwordProtected)]),
    field('text-private', 'muc#roomconfig_roomsecret', 'Password', [cfg.password]),
    field('list-single', 'muc#roomconfig_maxusers', 'Maximum number of occupants', [String(cfg.maxUsers)],
      sizes.map((n) => [String(n), String(n)] as [string, string])),
    field('list-single', 'muc#roomconfig_whois', 'Who may discover real JIDs', [cfg.whois],
      [['moderators', 'Moderators only'], ['anyone', 'Anyone']]),
    field('list-single', 'muc#roomconfig_allowpm', 'Who may send private messages', [cfg.allowPm],
      [['anyone', 'Anyone'], ['participants', 'Anyone with voice'], ['moderators', 'Moderators only'], ['none', 'Nobody']]),
    field('boolean', 'muc#roomconfig_allowinvites', 'Occupants may invite others', [bool(cfg.allowInvites)]),
    field('boolean', 'muc#roomconfig_changesubject', 'Occupants with voice may change the subject', [bool(cfg.changeSubject)]),
    field('text-single', 'muc#maxhistoryfetch', `Messages of history sent on entering (at most ${limits.maxHistory})`, [String(cfg.historyLength)]),
    field('boolean', 'muc#roomconfig_enablearchiving', 'Archive the messages (XEP-0313)', [bool(cfg.archiving)]),
  );
}

/** The values of each field of a submitted form, by var. */
export function formValues(form: Element): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of form.getChildren('field')) {
    const v = f.attrs.var;
    if (v === undefined) continue;
    out.set(v, f.getChildren('value').map((e) => e.text()));
  }
  return out;
}

function notAcceptable(text: string): StanzaError {
  return new StanzaError('not-acceptable', text);
}

function parseBool(name: string, values: string[]): boolean {
  const v = values[0]?.trim();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw notAcceptable(`${name} must be a boolean`);
}

function single(values: string[]): string {
  return values[0] ?? '';
}

function parseInteger(name: string, value: string, min: number, max: number): number {
  const t = value.trim();
  const n = /^\d{1,9}$/.test(t) ? Number(t) : NaN;
  if (!(n >= min && n <= max)) throw notAcceptable(`${name} must be a number from ${min} to ${max}`);
  return n;
}

/**
 * Applies a submitted muc#roomconfig form to `current` (§10.1.3, §10.2). Fields left out keep
 * their value; unknown fields are ignored. Throws bad-request for a form of another type and
 * not-acceptable for values the service cannot accept (XEP-0045 §10.2).
 */
export function applyConfigForm(current: RoomConfig, form: Element, limits: ConfigLimits): RoomConfig {
  const values = formValues(form);
  const formType = values.get('FORM_TYPE');
  if (formType !== undefined && single(formType) !== NS_MUC_ROOMCONFIG) throw new StanzaError('bad-request', 'The form is not a muc#roomconfig form');
  const cfg: RoomConfig = { ...current };
  let passwordFlagGiven = false;
  for (const [name, vals] of values) {
    switch (name) {
      case 'muc#roomconfig_roomname':
        cfg.name = single(vals);
        if (cfg.name.length > limits.maxSubjectLength) throw notAcceptable('The room name is too long');
        break;
      case 'muc#roomconfig_roomdesc':
        cfg.description = single(vals);
        if (cfg.description.length > limits.maxSubjectLength) throw notAcceptable('The room description is too long');
        break;
      case 'muc#roomconfig_persistentroom': cfg.persistent = parseBool(name, vals); break;
      case 'muc#roomconfig_publicroom': cfg.public = parseBool(name, vals); break;
      case 'muc#roomconfig_membersonly': cfg.membersOnly = parseBool(name, vals); break;
      case 'muc#roomconfig_moderatedroom': cfg.moderated = parseBool(name, vals); break;
      case 'muc#roomconfig_passwordprotectedroom':
        cfg.passwordProtected = parseBool(name, vals);
        passwordFlagGiven = true;
        break;
      case 'muc#roomconfig_roomsecret':
        cfg.password = single(vals);
        if (cfg.password.length > 256) throw notAcceptable('The password is too long');
        break;
      case 'muc#roomconfig_maxusers': {
        const v = single(vals).trim();
        cfg.maxUsers = v === '' || v === 'none' ? limits.maxOccupants : parseInteger(name, v, 1, limits.maxOccupants);
        break;
      }
      case 'muc#roomconfig_whois': {
        const v = single(vals);
        if (v !== 'moderators' && v !== 'anyone') throw notAcceptable('muc#roomconfig_whois must be moderators or anyone');
        cfg.whois = v;
        break;
      }
      case 'muc#roomconfig_allowpm': {
        const v = single(vals);
        if (v !== 'anyone' && v !== 'participants' && v !== 'moderators' && v !== 'none') {
          throw notAcceptable('muc#roomconfig_allowpm must be anyone, participants, moderators or none');
        }
        cfg.allowPm = v;
        break;
      }
      case 'muc#roomconfig_allowinvites': cfg.allowInvites = parseBool(name, vals); break;
      case 'muc#roomconfig_changesubject': cfg.changeSubject = parseBool(name, vals); break;
      case 'muc#maxhistoryfetch': cfg.historyLength = parseInteger(name, single(vals), 0, limits.maxHistory); break;
      case 'muc#roomconfig_enablearchiving': cfg.archiving = parseBool(name, vals); break;
      default: break;
    }
  }
  // A password given without the flag turns protection on (or off, when emptied).
  if (!passwordFlagGiven && values.has('muc#roomconfig_roomsecret')) cfg.passwordProtected = cfg.password !== '';
  if (cfg.passwordProtected && cfg.password === '') throw notAcceptable('A password-protected room needs a password');
  if (!cfg.passwordProtected) cfg.password = '';
  return cfg;
}

/** The XEP-0128 muc#roominfo form of a room's disco#info (§6.4). */
export function roomInfoForm(cfg: RoomConfig, subject: string, occupants: number, subjectMayChange: boolean): Element {
  const f = (v: string, label: string, value: string, type?: string) => x('field', { var: v, type, label }, x('value', null, value));
  return x('x', { xmlns: NS_DATA, type: 'result' },
    x('field', { var: 'FORM_TYPE', type: 'hidden' }, x('value', null, 'http://jabber.org/protocol/muc#roominfo')),
    f('muc#roomconfig_roomname', 'Room name', cfg.name, 'text-single'),
    f('muc#roominfo_description', 'Description', cfg.description, 'text-single'),
    f('muc#roominfo_subject', 'Current subject', subject, 'text-single'),
    f('muc#roominfo_subjectmod', 'Occupants may change the subject', bool(subjectMayChange), 'boolean'),
    f('muc#roominfo_occupants', 'Number of occupants', String(occupants), 'text-single'),
    f('muc#maxhistoryfetch', 'Messages of history sent on entering', String(cfg.historyLength), 'text-single'),
    f('muc#roomconfig_allowinvites', 'Occupants may invite others', bool(cfg.allowInvites), 'boolean'),
    f('muc#roomconfig_allowpm', 'Who may send private messages', cfg.allowPm, 'list-single'),
  );
}
