// @xmpp/client ships no type declarations; tests use it through the loosely typed helper in test/helpers/xmpp-js.ts.
declare module '@xmpp/client';
