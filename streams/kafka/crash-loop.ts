/**
 * Telling a crash loop from crashes: consumers that crash again and again at one position (the same batch,
 * or the same fetch positions) with nothing delivered between. A replaced consumer re-reads from the
 * committed offsets, so a record that kills the consumer would kill every replacement; this makes that
 * visible (never silent) while the source keeps trying, since the cause may be passing (a broker).
 */
import type { TransportError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';

/** Where consumers keep crashing: the batch being handed over, when the crash names it. */
export interface CrashLoop {
  readonly crashes: number;
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: number;
  readonly error: string;
}

export class CrashLoopDetector {
  /** The position of the last crash and how many crashes in a row happened there. */
  #last: { readonly site: string; readonly crashes: number } | undefined;
  #loop: CrashLoop | undefined;

  constructor(
    private readonly threshold: number,
    private readonly logger: Logger,
    private readonly metrics: Pick<Metrics, 'consumerCrashLoop'> | undefined,
  ) {}

  /** Set while the loop lasts. */
  get loop(): CrashLoop | undefined {
    return this.#loop;
  }

  /**
   * Counts a crash. Its position is the batch named in the error's details (topic, partition, offset), else
   * `positions`: the fetch positions of the assignment, as text.
   */
  crashed(error: TransportError, positions: () => string): void {
    const { topic, partition, offset } = error.details as { topic?: unknown; partition?: unknown; offset?: unknown };
    const at = typeof topic === 'string' && typeof partition === 'number' && typeof offset === 'number' ? { topic, partition, offset } : undefined;
    const site = at !== undefined ? `${at.topic}/${at.partition}/${at.offset}` : positions();
    const crashes = this.#last?.site === site ? this.#last.crashes + 1 : 1;
    this.#last = { site, crashes };
    if (crashes < this.threshold) return;
    this.#loop = { crashes, ...at, error: error.message };
    this.metrics?.consumerCrashLoop.set({ topic: at?.topic ?? '', partition: at === undefined ? '' : String(at.partition) }, at?.offset ?? -1);
    this.logger.error({ ...this.#loop, site }, 'consumer crash loop: it keeps crashing at the same position');
  }

  /** A batch was delivered: whatever crashed before is behind us. */
  progressed(): void {
    this.#last = undefined;
    if (this.#loop === undefined) return;
    this.logger.info({ crashes: this.#loop.crashes }, 'consumer crash loop over: a batch was delivered');
    this.#loop = undefined;
    this.metrics?.consumerCrashLoop.reset();
  }
}
