// Namespaces and registered names of XEP-0045 (Multi-User Chat) and the extensions a room speaks.

export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
export const NS_MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const NS_MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
export const NS_MUC_UNIQUE = 'http://jabber.org/protocol/muc#unique';
/** FORM_TYPEs (XEP-0045 §16.5). */
export const NS_MUC_ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';
export const NS_MUC_ROOMINFO = 'http://jabber.org/protocol/muc#roominfo';
export const NS_MUC_REQUEST = 'http://jabber.org/protocol/muc#request';
/** XEP-0045 §16.3 features: the room keeps the 'id' of reflected messages; it answers self-pings itself (XEP-0410). */
export const NS_MUC_STABLE_ID = 'http://jabber.org/protocol/muc#stable_id';
export const NS_MUC_SELF_PING = 'http://jabber.org/protocol/muc#self-ping-optimization';

export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
export const NS_DATA = 'jabber:x:data';
export const NS_DELAY = 'urn:xmpp:delay';
export const NS_PING = 'urn:xmpp:ping';
export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_SID = 'urn:xmpp:sid:0';
export const NS_VCARD = 'vcard-temp';
export const NS_HINTS = 'urn:xmpp:hints';
export const NS_CLIENT = 'jabber:client';

/** XEP-0045 §15.6.2 status codes used here. */
export const Status = {
  NonAnonymous: 100,
  ConfigChanged: 104,
  Self: 110,
  LoggingOn: 170,
  LoggingOff: 171,
  NowNonAnonymous: 172,
  NowSemiAnonymous: 173,
  Created: 201,
  NickModified: 210,
  Banned: 301,
  NickChanged: 303,
  Kicked: 307,
  AffiliationChange: 321,
  MembersOnly: 322,
  Shutdown: 332,
  Error: 333,
} as const;
