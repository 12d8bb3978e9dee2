/** `waitFor(lsn)`: read-your-writes against the change log. */

import { authHeaders, type FluxbaseConnection } from './connection.js';
import { errorFromResponse, FluxbaseError, WaitTimeoutError } from './errors.js';

/** The server's longest single wait; longer waits are made of several requests. */
const SERVER_MAX_WAIT_MS = 60_000;

export interface WaitForOptions {
  /** How long to wait in total (default 10 000 ms). */
  timeoutMs?: number;
  /** Cancels the wait (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * Resolves with `{lsn}` (the log's durable LSN) once Fluxbase's change log has
 * passed `lsn` (e.g. a write's `X-Fluxbase-Lsn` header), so that change
 * streams and realtime have seen the write. Rejects with
 * {@link WaitTimeoutError} when `timeoutMs` passes first.
 */
export async function waitFor(conn: FluxbaseConnection, lsn: string, options: WaitForOptions = {}): Promise<{ lsn: string }> {
  const total = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + total;
  for (;;) {
    const slice = Math.max(0, Math.min(SERVER_MAX_WAIT_MS, deadline - Date.now()));
    const q = new URLSearchParams({ lsn, timeout_ms: String(slice) });
    const res = await conn.fetch(`${conn.url}/changes/v1/wait?${q}`, { headers: await authHeaders(conn), signal: options.signal ?? null });
    if (res.ok) return (await res.json()) as { lsn: string };
    if (res.status === 408) {
      await res.body?.cancel().catch(() => {});
      if (Date.now() < deadline) continue;
      throw new WaitTimeoutError(lsn, total);
    }
    const { code, message } = await errorFromResponse(res);
    throw new FluxbaseError(code, message, res.status);
  }
}
