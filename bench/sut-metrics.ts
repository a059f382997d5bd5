/**
 * What the harness reads from the system under test's Prometheus endpoint (a Kafka target's child process
 * serves one, as the daemon does): resident memory, V8 heap, event-loop delay, and Verdict's bounded
 * queues with their configured bounds. Parsed from the text exposition, so the harness depends on nothing
 * but the names an operator's scraper would see.
 */
import { latencyHistogramsOf, type SutLatencyHistograms } from './sut-histograms.js';

/** One sample line: metric name, labels, value. */
export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of a Prometheus text exposition (comments and blank lines skipped; values as JS numbers). */
export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

export interface MailboxGauge {
  /** Rows waiting, summed over the threads that run the model. */
  readonly depth: number;
  /** Their capacity, summed the same way; null when the endpoint does not report it. */
  readonly capacity: number | null;
}

/** One scrape of the system under test. A null is a series the endpoint did not have. */
export interface SutMetrics {
  readonly rssBytes: number | null;
  readonly heapUsedBytes: number | null;
  /** The main thread's event-loop delay p99 since the previous scrape (prom-client resets its histogram on each), ms. */
  readonly eventLoopP99Ms: number | null;
  /** Records read and not yet acknowledged (bounded by maxBuffered, give or take a fetch). */
  readonly inflight: number | null;
  /** Records released into processing and not yet acknowledged (bounded by maxInflight). */
  readonly admitted: number | null;
  readonly pausedPartitions: number | null;
  /** Counters since the system started: partitions paused and resumed by backpressure. */
  readonly backpressurePauses: number | null;
  readonly backpressureResumes: number | null;
  readonly mailboxes: Readonly<Record<string, MailboxGauge>>;
  readonly bounds: { readonly maxInflight: number | null; readonly maxBuffered: number | null; readonly maxBufferedPerPartition: number | null };
  /** Verdict's own latency histograms (cumulative): latency-share.ts reads a level's share from two scrapes. */
  readonly latency?: SutLatencyHistograms;
}

/** The figures of one scrape (names as the daemon exposes them: `verdict_` prefix, process metrics included). */
export function sutMetricsOf(text: string): SutMetrics {
  const samples = parsePrometheus(text);
  const one = (name: string, labels: Readonly<Record<string, string>> = {}): number | null => {
    const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    return s === undefined ? null : s.value;
  };
  const mailboxes: Record<string, { depth: number; capacity: number | null }> = {};
  for (const s of samples) {
    const model = s.labels['model'];
    if (model === undefined) continue;
    if (s.name === 'verdict_model_mailbox_depth') mailboxes[model] = { depth: s.value, capacity: mailboxes[model]?.capacity ?? null };
    if (s.name === 'verdict_model_mailbox_capacity') mailboxes[model] = { depth: mailboxes[model]?.depth ?? 0, capacity: s.value };
  }
  const p99 = one('verdict_nodejs_eventloop_lag_p99_seconds');
  return {
    rssBytes: one('verdict_process_resident_memory_bytes'),
    heapUsedBytes: one('verdict_nodejs_heap_size_used_bytes'),
    eventLoopP99Ms: p99 === null ? null : Math.round(p99 * 1e5) / 100,
    inflight: one('verdict_inflight_events'),
    admitted: one('verdict_admitted_events'),
    pausedPartitions: one('verdict_paused_partitions'),
    backpressurePauses: one('verdict_backpressure_pauses_total'),
    backpressureResumes: one('verdict_backpressure_resumes_total'),
    mailboxes,
    bounds: {
      maxInflight: one('verdict_stream_bound', { bound: 'max_inflight' }),
      maxBuffered: one('verdict_stream_bound', { bound: 'max_buffered' }),
      maxBufferedPerPartition: one('verdict_stream_bound', { bound: 'max_buffered_per_partition' }),
    },
    latency: latencyHistogramsOf(samples),
  };
}
