/**
 * Verdict's outbound records as the librdkafka binding takes them, bytes exact (librdkafka-producer.ts says
 * why each is needed): strings as UTF-8, empty bytes as an empty view the binding cannot mistake for null,
 * headers one object each, in order; and a round's records picked out by place, to send again.
 */
import type { OutboundHeader, OutboundRecord } from '../../pipeline/record.js';
import type { LibrdkafkaHeader } from './librdkafka-binding.js';
import type { TopicRecords } from './kafka-client.js';

/** An empty view into a non-empty buffer: its data pointer is not null, so librdkafka writes it as empty, not null. */
const EMPTY: Buffer = Buffer.from([0]).subarray(1);

export function bytes(v: Buffer | string): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return b.length === 0 ? EMPTY : b;
}

export function headersOf(headers: readonly OutboundHeader[]): LibrdkafkaHeader[] {
  // One object a header, in order: names may repeat. A computed key defines an own property, even `__proto__`.
  return headers.map((h) => ({ [h.key]: bytes(h.value!) }));
}

/** Whether any record of the round has a null header value, which the binding cannot pass. */
export const hasNullHeader = (batch: readonly TopicRecords[]): boolean =>
  batch.some((t) => t.records.some((r) => r.headers.some((h) => h.value === null)));

/** A record's place in a round: `batch[topicIndex].records[recordIndex]`. */
export interface Place { readonly topicIndex: number; readonly recordIndex: number }

/** The records at `places`, as a round of their own, and where each came from. */
export function subRound(batch: readonly TopicRecords[], places: readonly Place[]): { batch: TopicRecords[]; from: Place[][] } {
  const topics = new Map<number, { records: OutboundRecord[]; from: Place[] }>();
  for (const p of places) {
    let group = topics.get(p.topicIndex);
    if (group === undefined) topics.set(p.topicIndex, (group = { records: [], from: [] }));
    group.records.push(batch[p.topicIndex]!.records[p.recordIndex]!);
    group.from.push(p);
  }
  const groups = [...topics];
  return { batch: groups.map(([t, g]) => ({ topic: batch[t]!.topic, records: g.records })), from: groups.map(([, g]) => g.from) };
}
