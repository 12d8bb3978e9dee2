/**
 * `@fluxbase/client`: `@supabase/supabase-js` for Fluxbase.
 *
 * Everything supabase-js exports, with `createClient` returning the same
 * client extended with `subscribeChanges` (resumable change streams) and
 * `waitFor` (read-your-writes). The standalone functions take a
 * {@link FluxbaseConnection} for use without a supabase-js client.
 */

export * from '@supabase/supabase-js';

export { createClient, type FluxbaseClient, type FluxbaseClientOptions, type FluxbaseExtensions } from './client.js';
export {
  subscribeChanges,
  storageKey,
  type Change,
  type ChangeSubscription,
  type Row,
  type SubscribeChangesOptions,
  type SubscriptionStatus,
} from './changes.js';
export { waitFor, type WaitForOptions } from './wait.js';
export { connection, type FetchLike, type FluxbaseConnection } from './connection.js';
export { memoryStorage, localStorageStorage, type PositionStorage, type WebStorageLike } from './storage.js';
export { ChangeHandlerError, ChangeStreamError, FluxbaseError, ResnapshotRequiredError, WaitTimeoutError } from './errors.js';
export { comparePositions, compareLsns } from './position.js';
export { SseParser, readSse, type SseEvent } from './sse.js';
