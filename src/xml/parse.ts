import type { Element } from './element';
import type { StreamError } from '../errors';
import { StreamParser, type StreamParserLimits } from './stream-parser';

/** Stored XML is trusted more than the wire: no size limit, deeper nesting allowed. */
const DOCUMENT_LIMITS: StreamParserLimits = { maxStanzaBytes: Infinity, maxDepth: 256, maxAttributes: 1024 };

/**
 * Parses one standalone element (stored XML: private storage, vCards, offline messages)
 * with the same rules as the stream parser: restricted XML, namespaces resolved the same
 * way (the root gets `xmlns` when it is in a namespace, children only where it changes).
 * An XML declaration and surrounding whitespace are allowed. Throws the StreamError
 * describing the first problem.
 */
export function parseXml(s: string, limits?: Partial<StreamParserLimits>): Element {
  let root: Element | undefined;
  let error: StreamError | undefined;
  const parser = new StreamParser(
    {
      onOpen() {},
      onElement(el) {
        root = el;
      },
      onClose() {},
      onError(e) {
        error = e;
      },
    },
    { ...DOCUMENT_LIMITS, ...limits },
  )._documentMode();
  parser.write(s);
  parser.end();
  if (error !== undefined) throw error;
  if (root === undefined) throw new Error('no root element');
  return root;
}
