/**
 * `subscribeChanges`: a resumable subscription to `GET /changes/v1/stream`.
 *
 * The guarantee: every change the caller may see, delivered to `onChange`
 * once and in commit order, across disconnects, server restarts and (with a
 * persistent `storage`) page reloads. It rests on three rules:
 *
 * 1. The position of a change is saved only after `onChange` has returned
 *    (or its promise resolved), and changes are handed over one at a time.
 * 2. Every (re)connection resumes with `Last-Event-ID` = the last saved
 *    position; the server sends exactly the changes after it.
 * 3. A change at or before the last saved position is never handed over again
 *    (a guard against any replay at a seam).
 *
 * A subscription that starts "now" first asks the server where now is
 * (`/changes/v1/wait?lsn=0/0`, answered at once with the log's durable LSN)
 * and streams from that LSN, so even a disconnect before the first change
 * loses nothing.
 */

import { authHeaders, type FetchLike, type FluxbaseConnection } from './connection.js';
import { ChangeHandlerError, ChangeStreamError, errorFromResponse, FluxbaseError, ResnapshotRequiredError } from './errors.js';
import { comparePositions, parsePosition } from './position.js';
import { readSse } from './sse.js';
import { memoryStorage, type PositionStorage } from './storage.js';

/** A row as JSON. */
export type Row = Record<string, unknown>;

/** One change, as `/changes/v1/stream` sends it. */
export interface Change<T extends Row = Row> {
  /** `<commit LSN>:<index in transaction>`: strictly increasing; what subscriptions resume from. */
  position: string;
  /** The transaction's commit LSN. */
  lsn: string;
  /** The transaction id. */
  xid: number;
  /** ISO 8601 commit time. */
  commit_timestamp: string;
  type: 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE' | 'MESSAGE';
  schema: string;
  table: string;
  columns?: { name: string; type: string }[];
  /** The new row (INSERT, UPDATE). Absent when an UPDATE moved the row out of the caller's view. */
  record?: T;
  /** The old row (UPDATE, DELETE). */
  old_record?: T;
  /** Set on an UPDATE that moved the row out of the caller's view. */
  left_view?: boolean;
  /** Columns whose unchanged TOASTed value was not available. */
  unchanged_toast?: string[];
  /** For `MESSAGE`: a `pg_logical_emit_message` (service key only). */
  message?: { prefix: string; content: string };
  [field: string]: unknown;
}

/** Connection states reported to `onStatus`. */
export type SubscriptionStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface SubscribeChangesOptions<T extends Row = Row> {
  /** Schema of the table (default `public`). */
  schema?: string;
  /** The table. */
  table: string;
  /** Row filter in realtime's syntax: `column=op.value` (`eq neq lt lte gt gte in is like ilike isdistinct`, `not.`), several joined by `,`. */
  filter?: string;
  /**
   * Where to start, overriding the stored position: a position (`0/16B3748:2`),
   * `now` or `start` (everything the server retains). Default: the stored
   * position, else `now`.
   */
  since?: string;
  /** Called for each change, in order. A returned promise is awaited before the next change and before the position is saved. */
  onChange: (change: Change<T>) => void | Promise<void>;
  /**
   * Called with {@link ResnapshotRequiredError} (changes were lost: refetch, then carry on;
   * a returned promise is awaited before further changes), {@link ChangeHandlerError},
   * and {@link ChangeStreamError} (`fatal` ones end the subscription).
   */
  onError?: (error: FluxbaseError) => void | Promise<void>;
  /** Connection state changes, for UIs and tests. `live` means the server has accepted the stream. */
  onStatus?: (status: SubscriptionStatus, error?: unknown) => void;
  /** Where the last delivered position is kept (default: the client's in-memory store). */
  storage?: PositionStorage;
  /** The storage key (default: `schema.table` plus `?filter` when filtered). */
  key?: string;
  /** Reconnection backoff: `initialMs` (250) doubling up to `maxMs` (10 000). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** A fetch for this subscription only (testing, proxies). */
  fetch?: FetchLike;
}

export interface ChangeSubscription {
  /** Stops the subscription and closes the stream. A change whose `onChange` promise is pending still has its position saved when it resolves. */
  unsubscribe(): void;
  /** The position of the last change delivered (or where the stream started), null before that is known. */
  position(): string | null;
}

/** The default storage key of a subscription. */
export function storageKey(schema: string, table: string, filter?: string): string {
  return filter ? `${schema}.${table}?${filter}` : `${schema}.${table}`;
}

const defaultStorage = memoryStorage();

/** Statuses that retrying cannot fix: the subscription stops and reports a fatal {@link ChangeStreamError}. */
const FATAL_STATUSES = new Set([400, 401, 403, 404, 405, 422]);

/** Subscribes to the changes of one table. See {@link SubscribeChangesOptions}. */
export function subscribeChanges<T extends Row = Row>(
  conn: FluxbaseConnection,
  options: SubscribeChangesOptions<T>,
  fallbackStorage: PositionStorage = defaultStorage,
): ChangeSubscription {
  if (!options || typeof options.table !== 'string' || options.table === '') throw new TypeError('subscribeChanges: `table` is required');
  if (typeof options.onChange !== 'function') throw new TypeError('subscribeChanges: `onChange` is required');
  const schema = options.schema ?? 'public';
  const table = options.table;
  const filter = options.filter || undefined;
  const storage = options.storage ?? fallbackStorage;
  const key = options.key ?? storageKey(schema, table, filter);
  const initialMs = options.backoff?.initialMs ?? 250;
  const maxMs = options.backoff?.maxMs ?? 10_000;
  const doFetch = options.fetch ?? conn.fetch;
  if (options.since !== undefined && options.since !== 'now' && options.since !== 'start' && !parsePosition(options.since)) {
    throw new TypeError(`subscribeChanges: since must be 'now', 'start' or a position like 0/16B3748:2, not ${JSON.stringify(options.since)}`);
  }

  let stopped = false;
  let controller: AbortController | null = null;
  let wake: (() => void) | null = null;
  /** The last position delivered (or the start point once known); what every reconnection resumes from. */
  let current: string | null = null;
  /** Where to start while `current` is unknown: `now` or `start`. */
  let startMode: 'now' | 'start' = 'now';
  /** Set when the server accepted the current connection: the backoff starts over. */
  let wentLive = false;

  const status = (s: SubscriptionStatus, e?: unknown) => {
    try {
      options.onStatus?.(s, e);
    } catch {
      // A status callback cannot break the subscription.
    }
  };
  const report = async (e: FluxbaseError) => {
    if (options.onError) {
      try {
        await options.onError(e);
      } catch {
        // Nothing more to tell the app.
      }
    } else if (e instanceof ResnapshotRequiredError || (e instanceof ChangeStreamError && e.fatal)) {
      console.warn(`[fluxbase] ${schema}.${table}: ${e.message}`);
    }
  };
  const save = async (pos: string) => {
    current = pos;
    await storage.set(key, pos);
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(t);
        wake = null;
        resolve();
      };
    });

  /** Resolves "now" to the log's durable LSN; null if the server cannot say. */
  const resolveNow = async (signal: AbortSignal): Promise<string | null> => {
    const res = await doFetch(`${conn.url}/changes/v1/wait?lsn=0/0&timeout_ms=0`, { headers: await authHeaders(conn), signal });
    if (res.status >= 500 || res.status === 429) throw new ChangeStreamError(`http_${res.status}`, `finding the stream's start: HTTP ${res.status}`, res.status, false);
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      return null;
    }
    const body = (await res.json()) as { lsn?: unknown };
    return typeof body.lsn === 'string' && parsePosition(body.lsn) ? body.lsn : null;
  };

  /** One connection: returns how to go on. */
  const connectOnce = async (signal: AbortSignal): Promise<'retry' | 'reset' | 'stop'> => {
    if (current === null && startMode === 'now') {
      const lsn = await resolveNow(signal);
      if (lsn !== null && !stopped) await save(lsn);
    }
    const from = current ?? startMode;
    const q = new URLSearchParams({ tables: `${schema}.${table}`, from });
    if (filter) q.set('filter', filter);
    const headers: Record<string, string> = { ...(await authHeaders(conn)), accept: 'text/event-stream', 'cache-control': 'no-cache' };
    if (current !== null) headers['last-event-id'] = current;
    const res = await doFetch(`${conn.url}/changes/v1/stream?${q}`, { headers, signal });
    if (res.status === 410) {
      const { message } = await errorFromResponse(res);
      await report(new ResnapshotRequiredError('position_expired', message, current, 410));
      current = null;
      startMode = 'now';
      return 'reset';
    }
    if (!res.ok || !res.body) {
      const { code, message } = await errorFromResponse(res);
      const fatal = FATAL_STATUSES.has(res.status);
      const e = new ChangeStreamError(code, message, res.status, fatal);
      if (fatal) {
        await report(e);
        return 'stop';
      }
      throw e;
    }
    wentLive = true;
    status('live');
    for await (const ev of readSse(res.body)) {
      if (stopped) return 'stop';
      switch (ev.event) {
        case 'change': {
          const change = JSON.parse(ev.data) as Change<T>;
          const pos = ev.id ?? change.position;
          // Rule 3: never twice, whatever the server replays.
          if (current !== null && (comparePositions(pos, current) ?? 1) <= 0) break;
          try {
            await options.onChange(change);
          } catch (cause) {
            await report(new ChangeHandlerError(pos, cause));
            return 'retry';
          }
          await save(pos);
          break;
        }
        case 'gap': {
          let data: { position?: string; message?: string } = {};
          try {
            data = JSON.parse(ev.data);
          } catch {
            // The event itself is the message.
          }
          const pos = ev.id ?? data.position ?? null;
          await report(new ResnapshotRequiredError('gap', data.message ?? 'changes were lost: resnapshot', pos));
          if (pos !== null && (current === null || (comparePositions(pos, current) ?? 0) > 0)) await save(pos);
          break;
        }
        case 'error': {
          let data: { code?: string; message?: string } = {};
          try {
            data = JSON.parse(ev.data);
          } catch {
            data = { message: ev.data };
          }
          if (data.code === 'position_expired') {
            await report(new ResnapshotRequiredError('position_expired', data.message ?? 'position expired', current));
            current = null;
            startMode = 'now';
            return 'reset';
          }
          await report(new ChangeStreamError(data.code ?? 'stream_error', data.message ?? ev.data, undefined, false));
          return 'retry';
        }
        case 'end':
          return 'retry';
        default:
          break;
      }
    }
    return 'retry';
  };

  const run = async () => {
    try {
      const stored = options.since === undefined ? await storage.get(key) : null;
      const start = options.since ?? stored ?? 'now';
      if (start === 'now' || start === 'start') startMode = start;
      else if (parsePosition(start)) current = start;
    } catch (e) {
      await report(new FluxbaseError('storage_failed', `reading the stored position: ${e instanceof Error ? e.message : String(e)}`));
    }
    let attempt = 0;
    status('connecting');
    while (!stopped) {
      controller = new AbortController();
      let next: 'retry' | 'reset' | 'stop';
      let failure: unknown;
      wentLive = false;
      try {
        next = await connectOnce(controller.signal);
      } catch (e) {
        failure = e;
        next = 'retry';
      }
      controller.abort();
      if (stopped || next === 'stop') break;
      if (next === 'reset') {
        attempt = 0;
        continue;
      }
      if (wentLive) attempt = 0;
      const delay = Math.min(maxMs, initialMs * 2 ** attempt);
      attempt = Math.min(attempt + 1, 30);
      status('reconnecting', failure);
      await sleep(delay);
    }
    stopped = true;
    status('closed');
  };

  void run();

  return {
    unsubscribe() {
      if (stopped) return;
      stopped = true;
      controller?.abort();
      wake?.();
    },
    position: () => current,
  };
}
