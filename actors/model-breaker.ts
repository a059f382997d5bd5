/**
 * One model version's circuit breaker as its actor uses it: the policy parsed by `circuitBreakerSchema`
 * (where its defaults live), and every transition shown on `verdict_model_circuit_state{model}`, counted in
 * `verdict_model_circuit_transitions_total{model,to}` and logged once (warn on open, info otherwise).
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { parseOptions } from '../core/options.js';
import { circuitBreakerSchema, type CircuitBreakerPolicy } from '../config/pipeline-schema.js';
import { CIRCUIT_STATE_VALUE, CircuitBreaker, type CircuitTransition } from './circuit-breaker.js';

export function modelBreaker(
  model: string, policyInput: Partial<CircuitBreakerPolicy>, clock: Clock, metrics: Metrics | undefined, log: Logger,
): CircuitBreaker {
  const policy = parseOptions(circuitBreakerSchema, policyInput, 'model actor circuitBreaker');
  const gauge = metrics?.circuitState.labels({ model });
  gauge?.set(CIRCUIT_STATE_VALUE.closed);
  const transitions = metrics?.circuitTransitions;
  return new CircuitBreaker(policy, clock, (t: CircuitTransition) => {
    gauge?.set(CIRCUIT_STATE_VALUE[t.to]);
    transitions?.inc({ model, to: t.to });
    const fields = { from: t.from, to: t.to, failures: t.failures, coolDownMs: policy.coolDownMs };
    if (t.to === 'open') log.warn(fields, 'circuit breaker opened: rows are refused with MODEL_CIRCUIT_OPEN');
    else log.info(fields, `circuit breaker ${t.to}`);
  });
}
