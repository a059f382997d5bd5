/**
 * Compiled state definitions for the state core's unit tests, built by hand (every default applied), so
 * the tests do not depend on the pipeline file's compiler. Durations in ms.
 */
import { createHash } from 'node:crypto';
import type { CompiledAggregate, CompiledState } from '../../pipeline/state/types.js';

export const SEC = 1000;
export const MIN = 60 * SEC;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;

export interface StateDefInput {
  readonly aggregates: readonly CompiledAggregate[];
  readonly eventTime?: CompiledState['eventTime'];
  readonly allowedLatenessMs?: number;
  readonly idleAfterMs?: number;
  readonly maxKeysPerPartition?: number;
}

/** A CompiledState: eventTime `ts` in ms, lateness 1m, idle = the longest window (at least 1m), 100000 keys, by default. */
export function stateDef(input: StateDefInput): CompiledState {
  const longest = Math.max(MIN, ...input.aggregates.map((a) => ('windowMs' in a ? a.windowMs : 0)));
  const meaning = {
    eventTime: input.eventTime ?? { field: 'ts', unit: 'ms' },
    allowedLatenessMs: input.allowedLatenessMs ?? MIN,
    idleAfterMs: input.idleAfterMs ?? longest,
    aggregates: input.aggregates,
  };
  return {
    ...meaning,
    maxKeysPerPartition: input.maxKeysPerPartition ?? 100_000,
    maxAheadMs: 7 * 24 * 3_600_000,
    changelogTopic: null,
    fingerprint: createHash('sha256').update(JSON.stringify(meaning)).digest('hex'),
  };
}

/** A windowed aggregate with bucket = window / 60 unless given. */
export function windowed<Op extends 'count' | 'sum' | 'mean' | 'min' | 'max'>(
  name: string, op: Op, field: Op extends 'count' ? string | null : string, windowMs: number, opts: { bucketMs?: number; sees?: 'before' | 'after' } = {},
): CompiledAggregate {
  return { name, op, field, windowMs, bucketMs: opts.bucketMs ?? windowMs / 60, sees: opts.sees ?? 'after' } as CompiledAggregate;
}

export function distinct(name: string, field: string, windowMs: number, opts: { bucketMs?: number; sees?: 'before' | 'after'; maxDistinct?: number } = {}): CompiledAggregate {
  return { name, op: 'distinct', field, windowMs, bucketMs: opts.bucketMs ?? windowMs / 60, sees: opts.sees ?? 'after', maxDistinct: opts.maxDistinct ?? 1000 };
}

export function last(name: string, field: string, sees: 'before' | 'after' = 'after'): CompiledAggregate {
  return { name, op: 'last', field, sees };
}

export function timeSince(name: string): CompiledAggregate {
  return { name, op: 'timeSince' };
}

/** A record key from a string. */
export function key(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}
