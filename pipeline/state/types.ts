/**
 * Per-key state: the shapes shared by the pipeline file's compiler (config/compile-state.ts), the state
 * itself (pipeline/state/), the stage that applies it in offset order (runtime/keyed-state.ts) and the core
 * that reads it (features `{ state: name }`, CEL `state.name`, the decision's `state`).
 *
 * State is keyed by the record key (its bytes), so it stays partition-local: each input partition has its
 * own state, restored from the same partition of a compacted changelog topic.
 */

/** One aggregate's value as an event sees it. Numbers are float64 (counts are whole numbers); null: nothing to report (an empty window's mean). */
export type StateValue = number | string | boolean | null;

/** Every declared aggregate's value, by name, as one event saw it. */
export type StateValues = Readonly<Record<string, StateValue>>;

/** Whether an aggregate is read before the event is applied to it, or after. */
export type StateSees = 'before' | 'after';

interface WindowedAggregate {
  readonly name: string;
  /** Window length, ms (a whole number of buckets). */
  readonly windowMs: number;
  /** Bucket length, ms; the window keeps `windowMs / bucketMs` buckets. */
  readonly bucketMs: number;
  readonly sees: StateSees;
}

/** A declared aggregate, compiled: every default applied. `field` is a (dotted) event path. */
export type CompiledAggregate =
  /** Events applied in the window; with `field`, only those where the field is present (not null). */
  | (WindowedAggregate & { readonly op: 'count'; readonly field: string | null })
  /** Of a numeric field's finite values in the window; an event without one is not counted. */
  | (WindowedAggregate & { readonly op: 'sum' | 'mean' | 'min' | 'max'; readonly field: string })
  /** Distinct values of a field in the window, exact while at most `maxDistinct` are retained. */
  | (WindowedAggregate & { readonly op: 'distinct'; readonly field: string; readonly maxDistinct: number })
  /** The field's value on the applied event with the greatest event time (ties: the later offset). */
  | { readonly name: string; readonly op: 'last'; readonly field: string; readonly sees: StateSees }
  /** Seconds from the key's previous applied event (its greatest event time before this one) to this event; null for a key's first. */
  | { readonly name: string; readonly op: 'timeSince' };

export type AggregateOp = CompiledAggregate['op'];

/** The pipeline file's `state` section, compiled (config/compile-state.ts). */
export interface CompiledState {
  /** Where an event's time comes from: a numeric field, epoch milliseconds or seconds. */
  readonly eventTime: { readonly field: string; readonly unit: 'ms' | 's' };
  /** An event older than its key's latest event time minus this (ms) is late: not applied, counted. */
  readonly allowedLatenessMs: number;
  /** A key whose latest event time is this much (ms) behind the event being applied, or behind the partition's latest, starts afresh (evicted). At least the longest window. */
  readonly idleAfterMs: number;
  /** Keys kept per partition; past it the least recently applied key is evicted (and counted). */
  readonly maxKeysPerPartition: number;
  /** The changelog topic, or null: the daemon derives `<group id>-<pipeline>-changelog` (Kafka Streams' naming). */
  readonly changelogTopic: string | null;
  /** In declaration order. */
  readonly aggregates: readonly CompiledAggregate[];
  /**
   * sha256 (hex) of everything above that gives stored state its meaning (event time, lateness, idle
   * bound, the aggregates), not the key bound or topic: a changelog written under another definition is
   * not restored.
   */
  readonly fingerprint: string;
}

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
