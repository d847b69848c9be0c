import type { RoomCommand } from './rooms';

/** The admin socket speaks one JSON object per line each way: a request, then its response. */
export interface AdminRequest {
  command: 'status' | 'sessions' | 'kick' | 'user.add' | 'user.del' | 'user.passwd' | 'user.list' | 'user.check'
    | 'room.list' | 'room.create' | 'room.destroy' | 'room.occupants';
  args?: Record<string, string | undefined>;
  /** Structured arguments of the room commands. */
  room?: RoomCommand;
}

export type AdminResponse = { ok: true; result: unknown } | { ok: false; error: string };

export interface StatusResult {
  pid: number;
  version: string;
  uptimeSeconds: number;
  domains: string[];
  sessions: number;
  connections: number;
  ports: Record<string, number>;
  modules: string[];
  rssBytes: number;
}

export interface SessionInfo {
  jid: string;
  address: string;
  priority: number;
  available: boolean;
  show?: string;
}
