/**
 * Where a subscription keeps the position of the last change it delivered,
 * so that a new subscription (after `unsubscribe`, a page reload or a
 * process restart) resumes exactly after it.
 */

/** A key-value store; either method may return a promise. */
export interface PositionStorage {
  get(key: string): string | null | undefined | Promise<string | null | undefined>;
  set(key: string, value: string): void | Promise<void>;
}

/** An in-memory store (lives as long as the object). */
export function memoryStorage(initial?: Record<string, string>): PositionStorage & { readonly entries: Map<string, string> } {
  const entries = new Map<string, string>(Object.entries(initial ?? {}));
  return {
    entries,
    get: (key) => entries.get(key) ?? null,
    set: (key, value) => {
      entries.set(key, value);
    },
  };
}

/** The subset of the Web Storage API used (`window.localStorage`, `sessionStorage`, or a stand-in). */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * A store in the browser's `localStorage` (survives reloads), keys prefixed
 * with `prefix`. Pass another Web Storage object as `backing` to use it instead.
 */
export function localStorageStorage(prefix = 'fluxbase.changes:', backing?: WebStorageLike): PositionStorage {
  const store = (): WebStorageLike => {
    const s = backing ?? (globalThis as { localStorage?: WebStorageLike }).localStorage;
    if (!s) throw new Error('localStorageStorage: no localStorage here (pass a Web Storage object as the second argument)');
    return s;
  };
  return {
    get: (key) => store().getItem(prefix + key),
    set: (key, value) => store().setItem(prefix + key, value),
  };
}
