import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from '../core/metrics.js';
import { breakerStates } from '../runtime/admin/breaker-states.js';

/** A thread's registry as prom-client JSON, with these breaker states (0 closed, 1 open, 2 half-open). */
async function thread(states: Record<string, number>): Promise<unknown> {
  const metrics = createMetrics();
  for (const [model, value] of Object.entries(states)) metrics.circuitState.set({ model }, value);
  return metrics.registry.getMetricsAsJSON();
}

describe('breaker states for the admin status', () => {
  test('per model the worst thread wins, with each thread counted: two open threads are open, not half-open', async () => {
    const states = breakerStates([
      await thread({ 'a@1': 0, 'b@1': 1 }),
      await thread({ 'a@1': 2, 'b@1': 1 }),
      await thread({ 'a@1': 0 }),
      await thread({}),
    ]);
    assert.deepEqual(states, [
      { model: 'a@1', state: 'half-open', threads: { closed: 2, open: 0, halfOpen: 1 } },
      { model: 'b@1', state: 'open', threads: { closed: 0, open: 2, halfOpen: 0 } },
    ]);
  });

  test('what is not a registry is skipped', () => {
    assert.deepEqual(breakerStates([null, {}, [{ name: 'verdict_model_circuit_state', values: [{ value: 7, labels: { model: 'x@1' } }] }]]), []);
  });
});
