// The modules that ship with the server, in load order (dependencies first).
import type { XmppModule } from '../src/module';
import roster from './roster';
import presence from './presence';
import carbons from './carbons';
import disco from './disco';
import ping from './ping';
import version from './version';
import time from './time';
import last from './last';
import mam from './mam';
import offline from './offline';
import vcard from './vcard';
import privateStorage from './private';
import blocking from './blocking';
import muc from './muc';
import register from './register';

export const BUILTIN_MODULES: readonly XmppModule[] = [
  roster, presence, carbons, disco, ping, version, time, last, mam, offline, vcard, privateStorage, blocking, muc, register,
];
