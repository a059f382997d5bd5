/**
 * What kafkajs's producer costs a record, by record shape: the CPU of encoding Produce requests (records,
 * record batch, CRC-32C) with kafkajs's own protocol code, for the passthrough baseline's records (the
 * input as it is: one header) and for Verdict's decisions (four headers, a larger JSON value), made by the
 * engine from the same events. Two variants show where the cost is: Verdict's decisions with only the
 * event-id header, and every record with kafkajs's zero-filled `Buffer.alloc` swapped for `allocUnsafe`
 * in this process only (kafkajs allocates a zeroed 512-byte buffer per record and per header). It measures
 * a client's cost, so it is the evidence for the case that a leaner client would lift the Kafka ceiling.
 * Run: `node dist/bench/micro/kafka-encode.js [records per request] [repeats]`.
 */
import { createRequire } from 'node:module';
import { HEADER } from '../../pipeline/encode-outcome.js';
import { WIRE_HEADERS, installRecordCodec } from '../../streams/kafka/kafkajs-record-codec.js';
import { sampleOutputs, type SampleMessage } from './sample-outputs.js';

const PER_REQUEST = Number(process.argv[2] ?? 1000);
const REPEATS = Number(process.argv[3] ?? 200);

interface ProduceRequest { encode(): Promise<{ buffer: Buffer }> }
type ProduceV3 = (args: { acks: number; timeout: number; topicData: unknown[] }) => ProduceRequest;
// As Verdict's producer runs it: with the record codec that writes headers in order.
installRecordCodec();
const produceV3 = createRequire(import.meta.url)('kafkajs/src/protocol/requests/produce/v3/request') as ProduceV3;

type Message = SampleMessage;

/** Median CPU µs per record of encoding one Produce request of `messages` over 4 partitions. */
async function usPerRecord(messages: readonly Message[]): Promise<{ us: number; requestBytes: number }> {
  const wire = messages.map((m) => ({ key: m.key, value: m.value, headers: { [WIRE_HEADERS]: m.headers } }));
  const partitions = [0, 1, 2, 3].map((partition) => ({ partition, messages: wire.filter((_, i) => i % 4 === partition) }));
  const request = (): ProduceRequest => produceV3({ acks: -1, timeout: 30_000, topicData: [{ topic: 'decisions', partitions }] });
  let bytes = 0;
  for (let i = 0; i < 20; i++) bytes = (await request().encode()).buffer.length; // warm the JIT
  const samples: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t0 = process.cpuUsage();
    await request().encode();
    const t = process.cpuUsage(t0);
    samples.push((t.user + t.system) / messages.length);
  }
  samples.sort((a, b) => a - b);
  return { us: +(samples[samples.length >> 1] ?? NaN).toFixed(2), requestBytes: bytes };
}

const meanBytes = (ms: readonly Message[], f: (m: Message) => number): number => Math.round(ms.reduce((s, m) => s + f(m), 0) / ms.length);

async function main(): Promise<void> {
  const { passthrough, verdict } = await sampleOutputs(PER_REQUEST);
  const verdictOneHeader: Message[] = verdict.map((m) => ({ ...m, headers: m.headers.filter((h) => h.key === HEADER.eventId) }));

  const shapes = { passthrough, verdict, 'verdict, event-id header only': verdictOneHeader };
  const results: Record<string, unknown> = {};
  for (const [name, messages] of Object.entries(shapes)) {
    results[name] = {
      valueBytes: meanBytes(messages, (m) => m.value.length),
      headers: messages[0]?.headers.length ?? 0,
      headerBytes: meanBytes(messages, (m) => m.headers.reduce((s, h) => s + h.key.length + (h.value?.length ?? 0), 0)),
      ...(await usPerRecord(messages)),
    };
  }
  // kafkajs zero-fills a fresh 512-byte buffer per record and per header; what would it cost without that?
  const alloc = Buffer.alloc.bind(Buffer);
  Buffer.alloc = (n: number, fill?: string | Buffer | number) => (fill === undefined ? Buffer.allocUnsafe(n) : alloc(n, fill));
  for (const [name, messages] of Object.entries(shapes)) results[`${name}, allocUnsafe`] = await usPerRecord(messages);
  Buffer.alloc = alloc;

  console.log(JSON.stringify({ recordsPerRequest: PER_REQUEST, repeats: REPEATS, cpuUsPerRecord: results }, null, 2));
}

await main();
