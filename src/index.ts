// The public surface modules build on.
export { Element, x, escapeText, escapeAttr, type Attrs, type Node } from './xml/element';
export { Jid, JidError } from './jid';
export { StanzaError, StreamError, errorReply, NS_STANZAS, NS_STREAMS, type StanzaErrorCondition } from './errors';
export { Priority, type HookMap, type HookName, type HookHandler } from './hooks';
export { defineModule, type XmppModule, type ModuleApi, type IqRequest, type IqHandler, type IqScope, type ServiceMap, type UserAdmin } from './module';
export { isAvailable, type Session } from './session';
export type { SessionRegistry } from './sessions';
export type { Database } from './storage/database';
export type { Migration } from './storage/migrate';
export type { AccountStore } from './storage/accounts';
export { UserError } from './core';
export { parseXml } from './xml/parse';
export { packageVersion } from './version';
