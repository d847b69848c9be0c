"""A scripted slixmpp client for the interop tests (Debian's python3-slixmpp).

Usage: slixmpp_client.py PORT JID PASSWORD
Logs in over STARTTLS (trusting the test's self-signed certificate), sends initial presence,
approves and returns subscription requests, echoes chat messages as "echo: <body>", and
leaves when it receives a message whose body is "quit". Every event is printed as one JSON
line on stdout for the test to read.
"""
import json
import ssl
import sys

from slixmpp import ClientXMPP


def emit(**event):
    print(json.dumps(event), flush=True)


class Scripted(ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.auto_authorize = True
        self.auto_subscribe = True
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('presence', self.on_presence)
        self.add_event_handler('failed_auth', lambda _: emit(event='failed_auth'))

    async def on_start(self, _):
        self.send_presence()
        await self.get_roster()
        emit(event='online', jid=str(self.boundjid), mechanism=getattr(self.plugin['feature_mechanisms'], 'mech', None) and self.plugin['feature_mechanisms'].mech.name)

    def on_presence(self, p):
        emit(event='presence', type=p['type'], **{'from': str(p['from'])})

    def on_message(self, msg):
        delay = msg.xml.find('{urn:xmpp:delay}delay')
        emit(event='message', body=msg['body'], type=msg['type'], delay=delay.get('stamp') if delay is not None else None,
             **{'from': str(msg['from'])})
        if msg['body'] == 'quit':
            self.disconnect()
        elif msg['type'] in ('chat', 'normal') and msg['body'] and delay is None:
            self.send_message(mto=msg['from'], mbody='echo: ' + msg['body'], mtype='chat')


def main():
    port, jid, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    client = Scripted(jid, password)
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    client.connect(('127.0.0.1', port))
    client.loop.run_until_complete(client.disconnected)
    emit(event='disconnected')


if __name__ == '__main__':
    main()
