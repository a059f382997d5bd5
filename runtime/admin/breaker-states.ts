/**
 * Circuit breaker states for the admin status, read from the `verdict_model_circuit_state` gauge of every
 * registry that has one: the main thread's and each worker's (prom-client JSON). Read per registry, not
 * from the scrape's merge: the merge sums gauges, and two open breakers (1 + 1) would read as half-open (2).
 */
import type { BreakerState } from './admin-target.js';

const GAUGE = 'verdict_model_circuit_state';
const STATES = ['closed', 'open', 'half-open'] as const;
/** Worst first: a model is as available as its least available thread. */
const SEVERITY: Readonly<Record<BreakerState['state'], number>> = { closed: 0, 'half-open': 1, open: 2 };

interface MetricJson {
  readonly name?: unknown;
  readonly values?: ReadonlyArray<{ readonly value?: unknown; readonly labels?: Readonly<Record<string, unknown>> }>;
}

/** Each model version's breaker across the registries given (each an array of prom-client metric JSON), by model name. */
export function breakerStates(registries: readonly unknown[]): BreakerState[] {
  const byModel = new Map<string, { closed: number; open: number; halfOpen: number }>();
  for (const registry of registries) {
    if (!Array.isArray(registry)) continue;
    const gauge = (registry as MetricJson[]).find((m) => m.name === GAUGE);
    for (const v of gauge?.values ?? []) {
      const model = v.labels?.['model'];
      const state = typeof v.value === 'number' ? STATES[v.value] : undefined;
      if (typeof model !== 'string' || state === undefined) continue;
      const counts = byModel.get(model) ?? { closed: 0, open: 0, halfOpen: 0 };
      if (state === 'half-open') counts.halfOpen++;
      else counts[state]++;
      byModel.set(model, counts);
    }
  }
  return [...byModel.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([model, threads]) => {
    const present = STATES.filter((s) => (s === 'half-open' ? threads.halfOpen : threads[s]) > 0);
    const state = present.reduce<BreakerState['state']>((worst, s) => (SEVERITY[s] > SEVERITY[worst] ? s : worst), 'closed');
    return { model, state, threads };
  });
}
