/**
 * Per-key state: the shapes shared by the pipeline file's compiler (config/compile-state.ts), the state
 * itself (pipeline/state/), the stage that applies it in offset order (runtime/keyed-state.ts) and the core
 * that reads it (features `{ state: name }`, CEL `state.name`, the decision's `state`).
 *
 * State is keyed by the record key (its bytes), so it stays partition-local: each input partition has its
 * own state, restored from the same partition of a compacted changelog topic.
 */
export type { AggregateOp, CompiledAggregate, CompiledState, StateSees } from '../../config/compiled-state.js';

/** One aggregate's value as an event sees it. Numbers are float64 (counts are whole numbers); null: nothing to report (an empty window's mean). */
export type StateValue = number | string | boolean | null;

/** Every declared aggregate's value, by name, as one event saw it. */
export type StateValues = Readonly<Record<string, StateValue>>;

/**
 * What the state stage hands the core for one record: the values the event saw, or why state could not
 * be applied (the core dead-letters the record with that code). Absent (undefined) for a record the stage
 * could not read (decode or schema failure): the core's own ingestion fails it the same way.
 */
export type StateRead =
  | { readonly values: StateValues }
  | { readonly error: { readonly code: string; readonly message: string; readonly details?: Readonly<Record<string, unknown>> } };

/** One changelog record: a key's encoded state, or null (a tombstone) when the key was evicted. */
export interface ChangelogEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}
