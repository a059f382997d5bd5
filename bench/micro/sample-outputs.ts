/**
 * Output records of both shapes the Kafka micro-benchmarks compare, made from the bench's own events: what
 * the passthrough baseline produces (each input as it is, one header) and what Verdict produces for the same
 * input (its decision, with Verdict's four headers), decided by the engine of the default pipeline.
 */
import { silentLogger } from '../../core/log.js';
import { defaultPipelinePath } from '../../core/paths.js';
import { Engine } from '../../runtime/engine.js';
import { headerBytes } from '../../pipeline/headers.js';
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
  try {
    for (let i = 0; i < inbound.length; i += 128) {
      for (const { output } of await engine.processBlock(inbound.slice(i, i + 128))) {
        // As block workers hand them to the sink: key and value as bytes.
        verdict.push({ key: Buffer.from(output.key ?? ''), value: Buffer.from(output.value ?? ''), headers: output.headers.map(headerBytes) });
      }
    }
  } finally {
    await engine.close();
  }
  return { passthrough, verdict };
}
