/** Errors the SDK reports. All extend {@link FluxbaseError}. */

/** Base class: `code` is machine-readable, `status` the HTTP status when there was one. */
export class FluxbaseError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  constructor(code: string, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FluxbaseError';
    this.code = code;
    this.status = status;
  }
}

/**
 * Changes were lost to this subscription: refetch ("resnapshot") the data.
 *
 * - `reason: 'gap'`: the server's replication slot was invalidated and changes
 *   were never captured (`event: gap`). The subscription continues right
 *   after the gap.
 * - `reason: 'position_expired'`: the position to resume from is older than the
 *   server's retention (HTTP 410 or `event: error` with that code). The
 *   subscription continues from now.
 */
export class ResnapshotRequiredError extends FluxbaseError {
  readonly reason: 'gap' | 'position_expired';
  /** The position the subscription was at (or the gap's position). */
  readonly position: string | null;
  constructor(reason: 'gap' | 'position_expired', message: string, position: string | null, status?: number) {
    super(reason, message, status);
    this.name = 'ResnapshotRequiredError';
    this.reason = reason;
    this.position = position;
  }
}

/** The change stream failed: a refused request (then the subscription stops) or a stream error (then it reconnects). */
export class ChangeStreamError extends FluxbaseError {
  /** True when the subscription gave up (bad filter, bad key, unknown table…). */
  readonly fatal: boolean;
  constructor(code: string, message: string, status: number | undefined, fatal: boolean) {
    super(code, message, status);
    this.name = 'ChangeStreamError';
    this.fatal = fatal;
  }
}

/** `onChange` threw or rejected: the change was not marked as processed and is delivered again after a reconnect. */
export class ChangeHandlerError extends FluxbaseError {
  readonly position: string;
  constructor(position: string, cause: unknown) {
    super('handler_failed', `onChange failed for the change at ${position}: ${cause instanceof Error ? cause.message : String(cause)}`, undefined, { cause });
    this.name = 'ChangeHandlerError';
    this.position = position;
  }
}

/** `waitFor` ran out of time (HTTP 408) before the change log passed the LSN. */
export class WaitTimeoutError extends FluxbaseError {
  readonly lsn: string;
  readonly timeoutMs: number;
  constructor(lsn: string, timeoutMs: number) {
    super('timeout', `the change log did not reach ${lsn} within ${timeoutMs} ms`, 408);
    this.name = 'WaitTimeoutError';
    this.lsn = lsn;
    this.timeoutMs = timeoutMs;
  }
}

/** Reads `{code, message}` (or `{error, msg}`…) from an error response. */
export async function errorFromResponse(res: Response): Promise<{ code: string; message: string }> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // The body is gone: the status says enough.
  }
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const code = j.code ?? j.error_code ?? j.error ?? `http_${res.status}`;
    const message = j.message ?? j.msg ?? j.error_description ?? (text || res.statusText);
    return { code: String(code), message: String(message) };
  } catch {
    return { code: `http_${res.status}`, message: text || res.statusText || `HTTP ${res.status}` };
  }
}
