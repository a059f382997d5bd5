/**
 * The admin API's endpoints: method, path, body schema, and what each asks of the `AdminTarget`.
 *
 *   GET  /admin/status                       lifecycle, assignment, lag, versions in use, breakers
 *   GET  /admin/models                       registry models, with the steps and roles that use them
 *   POST /admin/models/<name>/promote        { "version": 3, "alias"?: "production" }
 *   POST /admin/models/<name>/rollback       { "alias"?: "production" }
 *   POST /admin/pause, POST /admin/resume    the operator's pause of consumption (no body)
 *   GET  /admin/config                       effective config, secrets redacted
 */
import { z } from 'zod';
import type { AdminTarget } from './admin-target.js';
import { parseBody } from './admin-body.js';

/** The endpoint names, as `verdict_admin_requests_total{endpoint}` labels them ("unknown" for no route). */
export type AdminEndpoint = 'status' | 'models' | 'promote' | 'rollback' | 'pause' | 'resume' | 'config';

export interface AdminRoute {
  readonly endpoint: AdminEndpoint;
  readonly method: 'GET' | 'POST';
  /** True for the endpoints that change something (logged, one line each). */
  readonly mutating: boolean;
  /** The path parameters when the path (split on `/`, after `/admin`) is this route's, else null. */
  match(segments: readonly string[]): Readonly<Record<string, string>> | null;
  /** Serves the request: `body` is the raw text (validated here). Resolves with the JSON to answer; may also throw synchronously. */
  run(target: AdminTarget, params: Readonly<Record<string, string>>, body: string): Promise<unknown>;
}

const alias = z.string().min(1).max(100);
const promoteBody = z.object({ version: z.number().int().positive(), alias: alias.optional() }).strict();
const rollbackBody = z.object({ alias: alias.optional() }).strict();
const noBody = z.object({}).strict();

/** A fixed path: `/admin/<name>`. */
const fixed = (name: string) => (segments: readonly string[]) => (segments.length === 1 && segments[0] === name ? {} : null);
/** `/admin/models/<name>/<action>`. */
const modelAction = (action: string) => (segments: readonly string[]) =>
  segments.length === 3 && segments[0] === 'models' && segments[2] === action && segments[1] !== '' ? { name: segments[1] ?? '' } : null;

export const ADMIN_ROUTES: readonly AdminRoute[] = [
  { endpoint: 'status', method: 'GET', mutating: false, match: fixed('status'), run: (t) => t.status() },
  { endpoint: 'models', method: 'GET', mutating: false, match: fixed('models'), run: (t) => t.models() },
  { endpoint: 'config', method: 'GET', mutating: false, match: fixed('config'), run: (t) => Promise.resolve(t.config()) },
  {
    endpoint: 'promote', method: 'POST', mutating: true, match: modelAction('promote'),
    run: (t, p, body) => {
      const { version, alias: a } = parseBody(body, promoteBody, 'promote');
      return t.promote(p['name'] ?? '', version, a);
    },
  },
  {
    endpoint: 'rollback', method: 'POST', mutating: true, match: modelAction('rollback'),
    run: (t, p, body) => t.rollback(p['name'] ?? '', parseBody(body, rollbackBody, 'rollback').alias),
  },
  { endpoint: 'pause', method: 'POST', mutating: true, match: fixed('pause'), run: (t, _, body) => { parseBody(body, noBody, 'pause'); return Promise.resolve(t.pause()); } },
  { endpoint: 'resume', method: 'POST', mutating: true, match: fixed('resume'), run: (t, _, body) => { parseBody(body, noBody, 'resume'); return Promise.resolve(t.resume()); } },
];
