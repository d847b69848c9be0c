export { BoshService, type BoshOptions, type BoshTrackedSession } from './service';
export { BoshTransport } from './transport';
export { NS_HTTPBIND, NS_XBOSH } from './body';
