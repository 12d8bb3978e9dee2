/**
 * A Server-Sent Events reader over a `fetch` response body.
 *
 * `EventSource` cannot send headers (`apikey`, `Authorization`), so the SDK
 * reads the stream itself. This follows the WHATWG parsing rules: lines end
 * with CRLF, LF or CR; `:` starts a comment; a field's value loses one
 * leading space; `data` lines join with `\n`; a blank line dispatches; an
 * event cut off by the end of the stream is discarded.
 */

/** One dispatched event. */
export interface SseEvent {
  /** The `event:` field, `message` when absent. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The `id:` field of this event, if it had one. */
  id?: string;
}

/** Incremental parser: feed text, take events. */
export class SseParser {
  private buf = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private hasId = false;

  /** Feeds decoded text; returns the events it completed. */
  push(text: string): SseEvent[] {
    this.buf += text;
    const out: SseEvent[] = [];
    let start = 0;
    const buf = this.buf;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR at the end of the text may be the first half of a CRLF: wait for more.
      if (c === 13 && i + 1 === buf.length) break;
      const line = buf.slice(start, i);
      if (c === 13 && buf.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buf = buf.slice(start);
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      const ev = this.data.length > 0 ? { event: this.event || 'message', data: this.data.join('\n'), ...(this.hasId ? { id: this.id } : {}) } : null;
      this.data = [];
      this.event = '';
      this.id = undefined;
      this.hasId = false;
      return ev;
    }
    if (line.charCodeAt(0) === 58 /* : */) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.id = value;
          this.hasId = true;
        }
        break;
      default:
        // `retry` and unknown fields: ignored (reconnection is the SDK's own).
        break;
    }
    return null;
  }
}

/** Reads events from a response body until it ends, errors or is aborted. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const ev of parser.push(decoder.decode(value, { stream: true }))) yield ev;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
