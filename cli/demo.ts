/**
 * `verdict demo`: the embedded transport, the transaction generator at an open-loop rate, the card-risk
 * pipeline and its decisions, with a live progress line and a summary. A small share of the generated
 * records is deliberately malformed, to show them landing on the dead-letter topic with their reason.
 */
import { Engine } from '../runtime/engine.js';
import { LatencyRecorder, type LatencySummary } from '../bench/latency-recorder.js';
import { createTransactionGenerator } from '../bench/generator.js';
import { startOpenLoop } from '../bench/open-loop.js';
import type { Logger } from '../core/log.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { headerText } from '../pipeline/headers.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord, OutboundRecord } from '../pipeline/record.js';

export interface DemoOptions {
  readonly pipelinePath: string;
  readonly rate: number;
  readonly durationS: number;
  readonly partitions: number;
  readonly seed: number;
  readonly fraudRate: number;
  readonly poisonRate: number;
  readonly logger: Logger;
  /** Where progress and the summary go; a TTY gets one rewritten progress line. */
  readonly out: NodeJS.WriteStream;
}

export interface DemoSummary {
  readonly produced: number;
  readonly decisions: number;
  readonly deadLetters: number;
  readonly elapsedS: number;
  readonly throughput: number;
  readonly latency: LatencySummary;
  readonly byAction: Readonly<Record<string, number>>;
  /** Actions for events the generator made fraudulent, and for legitimate ones. */
  readonly fraud: Readonly<Record<string, number>>;
  readonly legit: Readonly<Record<string, number>>;
  readonly deadLetterCodes: Readonly<Record<string, number>>;
}

interface Sent {
  readonly intended: number;
  readonly isFraud: boolean;
}

const bump = (m: Record<string, number>, k: string): void => { m[k] = (m[k] ?? 0) + 1; };

/** Malformed records of the kinds producers really send: broken bytes, a missing field, a wrong type. */
function poison(n: number, id: string): string {
  switch (n % 3) {
    case 0: return `{"id":"${id}","amount":12.5,`;
    case 1: return JSON.stringify({ id, key: 'card-x', ts: Date.now(), currency: 'EUR' });
    default: return JSON.stringify({ id, key: 'card-x', ts: Date.now(), amount: 'twelve', currency: 'EUR' });
  }
}

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const engine = await Engine.create(options.pipelinePath, { logger: options.logger });
  const { input, output } = engine.pipeline;
  const log = new EmbeddedLog({ defaultPartitions: options.partitions, logger: options.logger });
  log.createTopic(input.topic, options.partitions);
  log.createTopic(output.topic, options.partitions);
  log.createTopic(output.deadLetter, 1);

  const generator = createTransactionGenerator({ seed: options.seed, fraudRate: options.fraudRate });
  const sent = new Map<string, Sent>();
  const latency = new LatencyRecorder();
  const byAction: Record<string, number> = {};
  const fraud: Record<string, number> = {};
  const legit: Record<string, number> = {};
  const deadLetterCodes: Record<string, number> = {};
  let decisions = 0;
  let deadLetters = 0;
  let produced = 0;
  let sequence = 0;

  const onDelivered = (d: EncodedOutcome, record: InboundRecord): void => {
    const id = d.eventId ?? headerText(record.headers, 'demo-id') ?? '';
    const s = sent.get(id);
    sent.delete(id);
    if (s !== undefined) latency.recordMs(performance.now() - s.intended);
    if (d.kind === 'decision') {
      decisions++;
      bump(byAction, d.label);
      bump(s?.isFraud === true ? fraud : legit, d.label);
    } else {
      deadLetters++;
      bump(deadLetterCodes, d.label);
    }
  };

  const producer = log.producer();
  await engine.prepareStream();
  const stream = engine.stream(log.consumer({ groupId: 'verdict-demo', topics: [input.topic] }), producer, { onDelivered });
  const startedAt = performance.now();
  const loop = startOpenLoop({
    schedule: { rate: options.rate, durationMs: options.durationS * 1000 },
    send: (intended) => {
      const records = intended.map((at): OutboundRecord => {
        const n = sequence++;
        if (options.poisonRate > 0 && (n * options.poisonRate) % 1 + options.poisonRate >= 1) {
          const id = `poison-${n}`;
          sent.set(id, { intended: at, isFraud: false });
          return { topic: input.topic, key: id, value: poison(n, id), headers: [{ key: 'demo-id', value: id }] };
        }
        const { event, isFraud } = generator.next();
        sent.set(event.id, { intended: at, isFraud });
        return { topic: input.topic, key: event.key, value: JSON.stringify(event), headers: [] };
      });
      produced += records.length;
      return producer.send(records).then(() => undefined);
    },
  });

  const progress = setInterval(() => {
    const elapsed = (performance.now() - startedAt) / 1000;
    const l = latency.summary();
    const actions = Object.entries(byAction).sort().map(([a, n]) => `${a}=${n}`).join(' ');
    const line = `[${elapsed.toFixed(0).padStart(3)}s] ${(decisions / elapsed).toFixed(0).padStart(6)} ev/s | decided ${decisions} | ${actions} | dlq ${deadLetters} | p50 ${l.p50Ms.toFixed(1)} ms p99 ${l.p99Ms.toFixed(1)} ms | in flight ${stream.inflight}`;
    if (options.out.isTTY) options.out.write(`\r${line.padEnd(120)}`);
    else options.out.write(`${line}\n`);
  }, 1000);

  await loop.done;
  // Wait for every produced record's outcome (bounded: a stuck pipeline must not hang the demo forever).
  const deadline = performance.now() + 30_000;
  while (decisions + deadLetters < produced && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const elapsedS = (performance.now() - startedAt) / 1000;
  clearInterval(progress);
  if (options.out.isTTY) options.out.write('\n');
  await stream.drain(5_000);
  await engine.close();
  return {
    produced, decisions, deadLetters, elapsedS,
    throughput: (decisions + deadLetters) / elapsedS,
    latency: latency.summary(), byAction, fraud, legit, deadLetterCodes,
  };
}

export function formatSummary(s: DemoSummary, options: Pick<DemoOptions, 'rate' | 'durationS' | 'partitions'>): string {
  const share = (m: Readonly<Record<string, number>>): string => {
    const total = Object.values(m).reduce((a, b) => a + b, 0);
    return Object.entries(m).sort().map(([a, n]) => `${a} ${n} (${((100 * n) / Math.max(1, total)).toFixed(1)}%)`).join(', ') || 'none';
  };
  const l = s.latency;
  return [
    '',
    `Verdict demo: ${options.rate} events/s offered for ${options.durationS} s on ${options.partitions} partitions (embedded transport)`,
    `  produced      ${s.produced}`,
    `  decisions     ${s.decisions}   dead letters ${s.deadLetters}   lost ${s.produced - s.decisions - s.deadLetters}`,
    `  throughput    ${s.throughput.toFixed(0)} events/s over ${s.elapsedS.toFixed(1)} s`,
    `  latency       p50 ${l.p50Ms} ms  p90 ${l.p90Ms} ms  p99 ${l.p99Ms} ms  p99.9 ${l.p999Ms} ms  max ${l.maxMs} ms (intended send → decision delivered)`,
    `  actions       ${share(s.byAction)}`,
    `  fraud events  ${share(s.fraud)}`,
    `  legit events  ${share(s.legit)}`,
    `  dead letters  ${Object.entries(s.deadLetterCodes).map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}`,
    '',
  ].join('\n');
}
