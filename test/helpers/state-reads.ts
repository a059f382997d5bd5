/**
 * The state stage for tests that drive the block processor or `Engine.processBlock` by hand: one
 * PartitionState per partition over the records in the order given, as the stream applies it before a
 * block is handed on. A record's key is its record key (bytes), or, for records built without one on the
 * API path, the event's `key` field (as the generator's producers key them).
 */
import type { CompiledPipeline } from '../../config/compiled.js';
import type { InboundRecord } from '../../pipeline/record.js';
import { PartitionState } from '../../pipeline/state/partition-state.js';
import type { StateRead } from '../../pipeline/state/types.js';

export type StateStage = (records: readonly InboundRecord[], events?: readonly Record<string, unknown>[]) => (StateRead | undefined)[] | undefined;

/** undefined reads for a pipeline without state; else each record's StateRead (undefined for a value that is not JSON). */
export function stateStage(pipeline: CompiledPipeline): StateStage {
  const state = pipeline.state;
  if (state === null) return () => undefined;
  const partitions = new Map<number, PartitionState>();
  return (records, events) => records.map((r, i) => {
    let part = partitions.get(r.partition);
    if (part === undefined) partitions.set(r.partition, (part = new PartitionState(state)));
    let event = events?.[i];
    if (event === undefined) {
      try {
        event = JSON.parse(Buffer.from(r.value ?? new Uint8Array()).toString('utf8')) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    }
    const fallback = events !== undefined && typeof event['key'] === 'string' ? new Uint8Array(Buffer.from(event['key'])) : null;
    return part.apply(r.offset, r.key ?? fallback, event);
  });
}
