/**
 * Prometheus histograms read from a text exposition (sut-metrics.ts parses it): the system under test's
 * own latency histograms, differences between two scrapes, and their quantiles as Prometheus estimates
 * them. latency-share.ts puts them beside the harness's figures.
 */

/** One sample line (sut-metrics.ts `PromSample`), as far as histograms need it. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const END_TO_END = 'verdict_end_to_end_seconds';
const STAGE = 'verdict_stage_seconds';

/** A Prometheus histogram: cumulative counts at each upper bound (`le`, ascending, +Inf last), its count and sum. */
export interface PromHistogram {
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>;
  readonly count: number;
  /** In the histogram's unit (seconds here). */
  readonly sum: number;
}

/** The histograms of Verdict's own latency in one scrape; null where the endpoint has none (a baseline). */
export interface SutLatencyHistograms {
  readonly endToEnd: PromHistogram | null;
  /** `verdict_stage_seconds` by stage (ingest, models, decision), per block. */
  readonly stages: Readonly<Record<string, PromHistogram>>;
}

/**
 * The histogram `name` of a text exposition's samples, summed over every label set that has `labels`
 * (several pipelines, or the worker threads' registries as the scrape merges them). Null when absent.
 */
export function histogramOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): PromHistogram | null {
  const matches = (s: Sample): boolean => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  const byLe = new Map<number, number>();
  let count = 0;
  let sum = 0;
  let found = false;
  for (const s of samples) {
    if (!matches(s)) continue;
    if (s.name === `${name}_bucket`) {
      const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
      found = true;
    } else if (s.name === `${name}_count`) {
      count += s.value;
    } else if (s.name === `${name}_sum`) {
      sum += s.value;
    }
  }
  if (!found) return null;
  const buckets = [...byLe].sort(([a], [b]) => a - b).map(([le, c]) => ({ le, count: c }));
  return { buckets, count, sum };
}

/** The stage histograms by stage, and the end-to-end one, of one scrape. */
export function latencyHistogramsOf(samples: readonly Sample[]): SutLatencyHistograms {
  const stages: Record<string, PromHistogram> = {};
  const names = new Set(samples.filter((s) => s.name === `${STAGE}_count`).map((s) => s.labels['stage']).filter((s): s is string => s !== undefined));
  for (const stage of names) {
    const h = histogramOf(samples, STAGE, { stage });
    if (h !== null) stages[stage] = h;
  }
  return { endToEnd: histogramOf(samples, END_TO_END), stages };
}

/** What was observed between two scrapes of the same histogram (`earlier` null: since the start). */
export function histogramDelta(later: PromHistogram, earlier: PromHistogram | null): PromHistogram {
  if (earlier === null) return later;
  const before = new Map(earlier.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: later.buckets.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) ?? 0) })),
    count: later.count - earlier.count,
    sum: later.sum - earlier.sum,
  };
}

/**
 * The q-quantile (0..1) as Prometheus' `histogram_quantile` estimates it: linear within the bucket the rank
 * falls in, from the bucket below's bound (0 for the first). A rank in the +Inf bucket gives the highest
 * finite bound. Null for an empty histogram.
 */
export function histogramQuantile(h: PromHistogram, q: number): number | null {
  const total = h.buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const { le, count } of h.buckets) {
    if (count >= rank && count > below) {
      if (le === Infinity) return lower;
      return lower + (le - lower) * ((rank - below) / (count - below));
    }
    if (le !== Infinity) lower = le;
    below = count;
  }
  return lower;
}
