/**
 * The progress display: a line per measurement window while a level runs (rewritten in place on a TTY),
 * and a line per finished level that stays. It goes to stderr, so stdout carries only the summary.
 */
import type { LevelPlan, WindowStat } from './run-level.js';
import type { JudgedLevel } from './saturation.js';

export interface ProgressSink {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

const fmt = (n: number | null, digits = 0): string =>
  n === null ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export class Progress {
  readonly #out: ProgressSink | undefined;
  #transient = false;

  /** `out` undefined: silent (tests, library callers). */
  constructor(out: ProgressSink | undefined) {
    this.#out = out;
  }

  window(target: string, plan: LevelPlan, index: number, w: WindowStat): void {
    const total = Math.max(1, Math.round(plan.durationS / plan.windowS));
    const line = `  ${target.padEnd(16)} ${fmt(plan.offeredRate).padStart(7)}/s offered  window ${index + 1}/${total}: `
      + `${fmt(w.throughput).padStart(7)}/s  p99 ${fmt(w.p99Ms, 1).padStart(7)} ms  lag ${fmt(w.lag)}  unanswered ${fmt(w.backlog)}`;
    if (this.#out?.isTTY === true) {
      this.#out.write(`\r\x1b[2K${line}`);
      this.#transient = true;
    } else {
      this.#out?.write(`${line}\n`);
    }
  }

  level(target: string, { result: r, judgement }: JudgedLevel): void {
    const verdict = judgement.sustainable ? 'ok  ' : `FAIL (${judgement.reasons.join(', ')})`;
    this.line(`${verdict.startsWith('ok') ? '✓' : '✗'} ${target.padEnd(16)} ${fmt(r.offeredRate).padStart(7)}/s offered → ${fmt(r.achievedRate).padStart(7)}/s `
      + `p50 ${fmt(r.latency.p50Ms, 1)} ms  p99 ${fmt(r.latency.p99Ms, 1)} ms  max ${fmt(r.latency.maxMs, 1)} ms  `
      + `dlq ${r.deadLetters}  lost ${r.lost}  lag≤${fmt(r.lagMax)}  cores ${fmt(r.cpu.machineCores, 1)}/${fmt(r.cpu.harnessCores, 1)}`
      + `${r.cpu.sutCores === null ? '' : `/${fmt(r.cpu.sutCores, 1)}`}`
      + `${r.cpuPerEvent.processUs === null ? '' : `  SUT µs/ev ${fmt(r.cpuPerEvent.processUs, 1)}/${r.cpuPerEvent.mainThreadUs === null ? '–' : fmt(r.cpuPerEvent.mainThreadUs, 1)}`}`
      + `  loop delay≤${fmt(r.eventLoopDelay.maxMs)} ms  ${verdict}`);
  }

  line(text: string): void {
    if (this.#transient) {
      this.#out?.write('\r\x1b[2K');
      this.#transient = false;
    }
    this.#out?.write(`${text}\n`);
  }
}
