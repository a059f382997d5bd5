/**
 * The pipeline file's `state` section as the compiler leaves it (config/compile-state.ts): plain data, part of
 * `CompiledPipeline`. Its meaning, and the state built from it, are in pipeline/state/.
 */

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
  /**
   * How far (ms) an event time may be ahead of its record's timestamp: further is refused with
   * STATE_EVENT_TIME_INVALID and not applied (one far-future event would make every later event of its key
   * late). A record without a timestamp is not checked. Not part of the fingerprint.
   */
  readonly maxAheadMs: number;
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
