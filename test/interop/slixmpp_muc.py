"""A scripted slixmpp room owner for the MUC interop test (Debian's python3-slixmpp, plugin xep_0045).

Usage: slixmpp_muc.py PORT JID PASSWORD ROOM GUEST
Logs in over STARTTLS, creates ROOM as nick "py" (configuring it through the owner form: name,
non-anonymous, persistent), sets the subject and invites GUEST (a bare JID). In the room it
echoes groupchat messages from others as "echo: <body>"; "kick me" gets the sender kicked;
"quit" makes it read the owner list, destroy the room and leave. Every event is printed as
one JSON line on stdout for the test to read.
"""
import asyncio
import json
import ssl
import sys

from slixmpp import ClientXMPP, JID


def emit(**event):
    print(json.dumps(event), flush=True)


class Owner(ClientXMPP):
    def __init__(self, jid, password, room, guest):
        super().__init__(jid, password)
        self.room = JID(room)
        self.guest = JID(guest)
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0045')
        self.register_plugin('xep_0004')
        self.register_plugin('xep_0203')
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('groupchat_message', self.on_groupchat)
        self.add_event_handler('muc::%s::presence' % self.room, self.on_muc_presence)

    async def on_start(self, _):
        self.send_presence()
        await self.get_roster()
        muc = self.plugin['xep_0045']
        presence, _subject, _occupants, _history = await muc.join_muc_wait(self.room, 'py', maxstanzas=0, timeout=10)
        emit(event='joined', codes=sorted(presence['muc']['status_codes']), affiliation=presence['muc']['affiliation'],
             role=presence['muc']['role'])
        form = await muc.get_room_config(self.room)
        fields = form.get_fields()
        emit(event='form', fields=sorted(fields.keys()))
        form['type'] = 'submit'
        form.set_values({
            'FORM_TYPE': 'http://jabber.org/protocol/muc#roomconfig',
            'muc#roomconfig_roomname': 'Interop',
            'muc#roomconfig_whois': 'anyone',
            'muc#roomconfig_persistentroom': True,
        })
        await muc.set_room_config(self.room, form)
        info = await self.plugin['xep_0030'].get_info(jid=self.room)
        identities = list(info['disco_info']['identities'])
        emit(event='configured', features=sorted(info['disco_info']['features']),
             name=identities[0][3] if identities else None)
        muc.set_subject(self.room, 'Interop testing')
        muc.invite(self.room, self.guest, reason='Come and test')
        emit(event='invited')

    def on_muc_presence(self, presence):
        emit(event='presence', nick=presence['muc']['nick'], type=presence['type'], role=presence['muc']['role'],
             jid=str(presence['muc']['jid']) if presence['muc']['jid'] else None, codes=sorted(presence['muc']['status_codes']))

    def on_groupchat(self, msg):
        nick = msg['mucnick']
        body = msg['body']
        if not body or nick == 'py':
            return
        emit(event='groupchat', nick=nick, body=body, id=msg['id'])
        if body == 'kick me':
            asyncio.ensure_future(self.kick(nick))
        elif body == 'quit':
            asyncio.ensure_future(self.finish())
        else:
            self.send_message(mto=self.room, mbody='echo: ' + body, mtype='groupchat')

    async def kick(self, nick):
        await self.plugin['xep_0045'].set_role(self.room, nick, 'none', reason='as asked')
        emit(event='kicked', nick=nick)

    async def finish(self):
        muc = self.plugin['xep_0045']
        owners = await muc.get_affiliation_list(self.room, 'owner')
        emit(event='owners', jids=[str(j) for j in owners])
        await muc.destroy(self.room, reason='done')
        emit(event='destroyed')
        self.disconnect()


def main():
    port, jid, password, room, guest = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    client = Owner(jid, password, room, guest)
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    client.connect(('127.0.0.1', port))
    client.loop.run_until_complete(client.disconnected)
    emit(event='disconnected')


if __name__ == '__main__':
    main()
