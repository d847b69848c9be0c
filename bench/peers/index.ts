/** The registry of benchmark peers. */
import { ejabberd } from './ejabberd';
import { ours } from './ours';
import { prosody } from './prosody';
import { relay } from './relay';
import type { Peer, ServerName } from './types';

export const PEERS: Record<ServerName, Peer> = { ours, prosody, ejabberd, relay };
export * from './types';
