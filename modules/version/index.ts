// XEP-0092: Software Version. Name and version of the server; the OS only when configured.
import { release, type } from 'node:os';
import { defineModule, x } from '../../src';
import { packageVersion } from '../../src/version';

export const NS_VERSION = 'jabber:iq:version';

export interface VersionOptions {
  /** Reveal the operating system (off by default, like Prosody's hide_os_type). */
  showOs: boolean;
}

export default defineModule<VersionOptions>({
  name: 'version',
  features: [NS_VERSION],
  defaults: { showOs: false },
  setup(api) {
    const version = packageVersion();
    const os = api.options.showOs === true ? `${type()} ${release()}` : undefined;
    api.iq('get', NS_VERSION, 'query', () =>
      x('query', { xmlns: NS_VERSION },
        x('name', null, 'xmppd'),
        x('version', null, version),
        os !== undefined ? x('os', null, os) : undefined,
      ), 'host');
  },
});
