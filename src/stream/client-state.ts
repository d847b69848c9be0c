import type { Element } from '../xml/element';

/** XEP-0352: Client State Indication. */
export const NS_CSI = 'urn:xmpp:csi:0';

/** Held stanzas beyond which an inactive client gets everything anyway. */
const MAX_HELD = 200;

/**
 * While the client says it is inactive (a phone in a pocket), presence updates and
 * bodiless messages (chat states, receipts) wait: only the latest presence per sender is
 * kept. Anything urgent (a message with a body, an IQ, a subscription request) flushes
 * what is held first, so the client still sees everything in order.
 */
export class ClientState {
  private inactive = false;
  /** Latest presence per sender, in arrival order of their latest update. */
  private readonly presences = new Map<string, Element>();
  private readonly others: Element[] = [];

  get isInactive(): boolean {
    return this.inactive;
  }

  setInactive(): void {
    this.inactive = true;
  }

  /** Back to active: returns what was held, to be sent now. */
  setActive(): Element[] {
    this.inactive = false;
    return this.flush();
  }

  /**
   * Offers an outgoing stanza. Returns the stanzas to send now (held ones first), or an
   * empty list when this one is held.
   */
  offer(stanza: Element): Element[] {
    if (!this.inactive) return [stanza];
    if (isDeferrable(stanza) && this.presences.size + this.others.length < MAX_HELD) {
      if (stanza.name === 'presence') {
        const from = stanza.attrs.from ?? '';
        this.presences.delete(from);
        this.presences.set(from, stanza);
      } else {
        this.others.push(stanza);
      }
      return [];
    }
    const out = this.flush();
    out.push(stanza);
    return out;
  }

  private flush(): Element[] {
    if (this.presences.size === 0 && this.others.length === 0) return [];
    const out = [...this.others, ...this.presences.values()];
    this.others.length = 0;
    this.presences.clear();
    return out;
  }
}

function isDeferrable(stanza: Element): boolean {
  if (stanza.name === 'presence') {
    const type = stanza.attrs.type;
    return type === undefined || type === 'unavailable';
  }
  if (stanza.name === 'message') {
    const type = stanza.attrs.type;
    return type !== 'error' && type !== 'groupchat' && stanza.getChild('body') === undefined;
  }
  return false;
}
