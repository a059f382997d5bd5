/**
 * The output reader of the embedded targets: follows the decision and dead-letter topics of an embedded
 * log and reports each record's id as soon as it is appended. It waits on `waitForRecords`, which the log
 * resolves inside the append that reached the count, so an arrival is stamped one microtask after the
 * system under test wrote it: the same point for Verdict and for the fused baseline.
 */
import { headerText } from '../../pipeline/headers.js';
import { BENCH_ID_HEADER } from '../events.js';
import type { EmbeddedLog } from '../../streams/embedded/embedded-log.js';
import { DECISION_ID_HEADER, type OutputKind, type OutputListener } from './target.js';

export class EmbeddedOutputReader {
  readonly #log: EmbeddedLog;
  readonly #abort = new AbortController();
  readonly #loops: Promise<void>[] = [];

  constructor(log: EmbeddedLog) {
    this.#log = log;
  }

  follow(topic: string, kind: OutputKind, onOutput: OutputListener): void {
    this.#loops.push(this.#tail(topic, kind, onOutput));
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
  }

  async #tail(topic: string, kind: OutputKind, onOutput: OutputListener): Promise<void> {
    const log = this.#log;
    // Start at the end: a reader joins a running system and reports only what arrives from now on.
    const positions = log.endOffsets(topic);
    let seen = positions.reduce((a, b) => a + b, 0);
    const idHeader = kind === 'decision' ? DECISION_ID_HEADER : BENCH_ID_HEADER;
    while (!this.#abort.signal.aborted) {
      try {
        await log.waitForRecords(topic, seen + 1, this.#abort.signal);
      } catch {
        return; // aborted
      }
      for (let p = 0; p < positions.length; p++) {
        const records = log.read(topic, p, positions[p] ?? 0);
        for (const r of records) {
          const id = headerText(r.headers, idHeader) ?? headerText(r.headers, BENCH_ID_HEADER);
          if (id !== undefined) onOutput(id, kind);
        }
        const last = records[records.length - 1];
        if (last !== undefined) positions[p] = last.offset + 1;
        seen += records.length;
      }
    }
  }
}
