/** `verdict admin`'s human output: tables and one-liners from the admin API's JSON answers. */
import { stringify as toYaml } from 'yaml';
import type { AdminConfig, AdminConsumption, AdminModelChange, AdminModels, AdminStatus } from '../runtime/admin/admin-target.js';
import { formatTable } from './models-command.js';

/** How `verdict admin status` names where the consumer's fetch wait came from. */
const FETCH_WAIT_SOURCES: Readonly<Record<NonNullable<AdminStatus['fetchWait']>['source'], string>> = {
  configured: 'kafka.maxWaitTimeInMs',
  broker: 'Kafka\'s default: the broker answers as soon as records arrive',
  'mock-broker': 'librdkafka\'s mock cluster detected: it answers a fetch only when its wait ends',
  unknown: 'Kafka\'s default: the broker could not be asked what it is',
};

const dash = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : String(v));

export function formatStatus(s: AdminStatus): string {
  const parts = [
    `lifecycle  ${s.lifecycle}${s.paused ? ' (consumption paused by the operator)' : ''}`,
    `lag        ${s.lagAgeMs === null ? 'not sampled yet' : `sampled ${(s.lagAgeMs / 1000).toFixed(1)} s ago`}`,
    ...(s.fetchWait === undefined ? [] : [`fetch wait ${s.fetchWait.ms} ms (${FETCH_WAIT_SOURCES[s.fetchWait.source]})`]),
    '',
    s.assignment.length === 0 ? 'no partitions assigned\n' : formatTable(
      ['TOPIC', 'PARTITION', 'LAG', 'THROTTLED', 'HALTED AT'],
      s.assignment.map((p) => [p.topic, String(p.partition), dash(p.lag), p.throttled ? 'yes' : 'no', dash(p.haltedAt)]),
    ),
    formatTable(
      ['STEP', 'ROLE', 'CONFIGURED', 'IN FORCE', 'REFUSED'],
      s.versions.steps.flatMap(({ step, roles }) => roles.map((r) => [
        step, r.percent === undefined ? r.role : `${r.role} ${r.percent}%`, r.id, r.ref,
        r.refused === undefined ? '-' : `${r.refused.ref} ${r.refused.code}`,
      ])),
    ),
    s.breakers.length === 0 ? 'no circuit breakers yet\n' : formatTable(
      ['MODEL', 'BREAKER', 'THREADS (closed/open/half-open)'],
      s.breakers.map((b) => [b.model, b.state, `${b.threads.closed}/${b.threads.open}/${b.threads.halfOpen}`]),
    ),
  ];
  return parts.join('\n');
}

export function formatModels(m: AdminModels): string {
  if (m.models.length === 0) return 'no models\n';
  return formatTable(['NAME', 'VERSIONS', 'ALIASES', 'IN USE'], m.models.map((model) => [
    model.name,
    model.versions.join(', ') || '-',
    Object.entries(model.aliases).map(([a, v]) => `${a}=${v}`).join(' ') || '-',
    model.inUse.map((u) => `${u.step}/${u.role}=${u.ref}`).join(' ') || '-',
  ]));
}

export function formatChange(c: AdminModelChange, verb: 'promoted' | 'rolled back'): string {
  const head = `${c.change.name}@${c.change.alias}: ${c.change.from ?? '-'} -> ${c.change.to} (${verb})\n`;
  if (c.swaps === null) return `${head}the daemon does not swap live: its versions in force are unchanged until a restart\n`;
  if (c.swaps.length === 0) return `${head}no step uses this alias: nothing swapped\n`;
  return head + c.swaps.map((s) => `  step ${s.step} (${s.role}): ${s.from} -> ${s.to} ${s.ok ? `in ${s.ms} ms` : `REFUSED ${s.error?.code ?? ''}`}\n`).join('');
}

export function formatConsumption(c: AdminConsumption): string {
  const state = c.paused ? 'paused' : 'resumed';
  return c.changed ? `consumption ${state} (${c.partitions} partitions assigned)\n` : `consumption already ${state} (nothing changed)\n`;
}

export function formatConfig(c: AdminConfig): string {
  const notes = [`# pipeline: ${c.pipeline}`, `# redacted: ${c.redacted.join(', ') || 'nothing'}`, `# from the environment: ${c.overridden.join(', ') || 'nothing'}`];
  return `${notes.join('\n')}\n${toYaml(c.config)}`;
}
