/**
 * Output records of both shapes the Kafka micro-benchmarks compare, made from the bench's own events: what
 * the passthrough baseline produces (each input as it is, one header) and what Verdict produces for the same
 * input (its decision and Verdict's headers), decided by the engine of the default pipeline. That pipeline
 * keeps per-key state, so each event's state read is made as `Engine.evaluate` makes it (one in-memory
 * partition, call order); without one the core dead-letters every record (INTERNAL_ERROR), and the "decisions"
 * would be dead letters with eight headers. Throws if any sample comes out a dead letter.
 */
import { silentLogger } from '../../core/log.js';
import { defaultPipelinePath } from '../../core/paths.js';
import { Engine } from '../../runtime/engine.js';
import { CallState } from '../../runtime/keyed-state.js';
import { headerBytes } from '../../pipeline/headers.js';
import { createIngestor } from '../../pipeline/ingest/ingest.js';
import type { InboundRecord, RecordHeader } from '../../pipeline/record.js';
import { EventPool, headerList } from '../events.js';

export interface SampleMessage {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly headers: readonly RecordHeader[];
}

export async function sampleOutputs(count: number): Promise<{ passthrough: SampleMessage[]; verdict: SampleMessage[] }> {
  const events = new EventPool({ seed: 42, poisonRate: 0 }).sequence('e').take(count);
  const passthrough = events.map((e): SampleMessage => ({ key: Buffer.from(e.key), value: e.value, headers: headerList(e).map(headerBytes) }));
  const engine = await Engine.create(defaultPipelinePath, { logger: silentLogger });
  const inbound = passthrough.map((m, offset): InboundRecord => ({ topic: 'transactions', partition: 0, offset, timestamp: Date.now(), ...m }));
  const verdict: SampleMessage[] = [];
  const definition = engine.pipeline.state;
  const ingestor = createIngestor(engine.pipeline, { now: () => Date.now() });
  const state = definition === null ? undefined : new CallState(definition, (raw, key) => ingestor.identifyEvent(raw, key));
  try {
    for (let i = 0; i < inbound.length; i += 128) {
      const block = inbound.slice(i, i + 128);
      const states = state === undefined ? undefined
        : block.map((r) => state.apply(JSON.parse(r.value!.toString('utf8')) as Record<string, unknown>, r.offset, r.timestamp));
      for (const { output } of await engine.processBlock(block, undefined, states)) {
        if (output.topic !== engine.pipeline.output.topic) throw new Error(`a sample event was dead-lettered: ${output.headers.map((h) => `${h.key}=${h.value?.toString() ?? ''}`).join(' ')}`);
        // As block workers hand them to the sink: key and value as bytes.
        verdict.push({ key: Buffer.from(output.key ?? ''), value: Buffer.from(output.value ?? ''), headers: output.headers.map(headerBytes) });
      }
    }
  } finally {
    await engine.close();
  }
  return { passthrough, verdict };
}
