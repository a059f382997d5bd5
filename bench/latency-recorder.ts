/** Latency percentiles on an HDR histogram (microsecond resolution, up to 10 minutes). */
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

export class LatencyRecorder {
  readonly #histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

  recordMs(ms: number): void {
    // Clamp: a negative value means the clocks disagree by a hair, not that the event arrived before it left.
    this.#histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.#histogram.totalCount;
  }

  summary(): LatencySummary {
    const h = this.#histogram;
    const ms = (us: number): number => Math.round(us) / 1000;
    // HdrHistogram answers a percentile with the top of its value's bucket (3 significant digits), which can
    // lie above the largest value recorded: a p99.9 above the max reads as a contradiction, so it is capped.
    const at = (percentile: number): number => ms(Math.min(h.getValueAtPercentile(percentile), h.maxValue));
    return {
      count: h.totalCount,
      p50Ms: at(50),
      p90Ms: at(90),
      p99Ms: at(99),
      p999Ms: at(99.9),
      maxMs: ms(h.maxValue),
      meanMs: ms(h.mean),
    };
  }

  reset(): void {
    this.#histogram.reset();
  }
}
