// The searchable text of archived messages: used where messages are archived and where the
// archive is indexed (which may be the archive's own thread, so this file imports little).
import type { Element } from '../../src/xml/element';
import { parseXml } from '../../src/xml/parse';

const NS_CLIENT = 'jabber:client';

/** The searchable text of an archived message (its bodies), '' for none or when it cannot be read. */
export function archivedText(xml: string): string {
  try {
    return bodies(parseXml(xml)) ?? '';
  } catch {
    return ''; // query results log unreadable messages; the index just leaves them out
  }
}

/** The text of the message's <body/> elements (all languages), or undefined when it has none. */
export function bodies(stanza: Element): string | undefined {
  let text: string | undefined;
  for (const child of stanza.children) {
    if (typeof child === 'string' || child.name !== 'body') continue;
    const ns = child.attrs.xmlns ?? stanza.attrs.xmlns;
    if (ns !== undefined && ns !== NS_CLIENT) continue;
    text = text === undefined ? child.text() : text + '\n' + child.text();
  }
  return text;
}
