import { UserError, type Core } from '../core';
import type { CreateRoomOptions, OccupantSummary, RoomSummary } from '../../modules/muc/service';

/** Room commands (`xmppd room ...`) on a core, running or opened by the CLI. */
export type RoomCommand =
  | { command: 'room.list' }
  | { command: 'room.create'; jid: string; options: CreateRoomOptions }
  | { command: 'room.destroy'; jid: string; reason?: string }
  | { command: 'room.occupants'; jid: string };

export async function runRoomCommand(core: Core, cmd: RoomCommand): Promise<RoomSummary[] | RoomSummary | OccupantSummary[] | { destroyed: string }> {
  const muc = core.modules.service('muc');
  if (!muc) throw new UserError('group chat is turned off (modules.muc: false in the config)');
  switch (cmd.command) {
    case 'room.list':
      return muc.listRooms();
    case 'room.create':
      return muc.createRoom(cmd.jid, cmd.options);
    case 'room.destroy':
      if (!(await muc.destroyRoom(cmd.jid, cmd.reason))) throw new UserError(`there is no room ${cmd.jid} (see: xmppd room list)`);
      return { destroyed: cmd.jid };
    case 'room.occupants': {
      const list = muc.occupants(cmd.jid);
      if (!list) throw new UserError(`there is no room ${cmd.jid} (see: xmppd room list)`);
      return list;
    }
  }
}
