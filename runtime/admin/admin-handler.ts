/**
 * The admin API over HTTP: one request handler, mounted on the metrics endpoint or served on its own
 * listener (admin-endpoint.ts). Every /admin/* request goes through the same steps:
 *
 *   route lookup → off? (403 ADMIN_DISABLED) → bearer token (401) → no route (404) / wrong method (405)
 *   → body (413 past 64 KiB, 400 malformed) → the target → 200 with JSON, or the error's status
 *
 * The token is checked before the route is looked at, so an unauthenticated caller learns nothing about the
 * endpoints. Every request is counted in `verdict_admin_requests_total{endpoint,status}`; every mutating one
 * (promote, rollback, pause, resume) and every refused token is logged. Headers are never logged, nor the
 * path of a request whose token was refused.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AdminAuthError, AdminDisabledError, AdminMethodError, AdminNotFoundError, AdminRequestError, asVerdictError,
} from '../../core/errors.js';
import { componentLogger, type Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import { pathOf, type RequestHandler } from '../../core/metrics-server.js';
import { bearerCheck } from './admin-auth.js';
import { readBody } from './admin-body.js';
import { errorBody, httpStatusOf } from './admin-errors.js';
import { ADMIN_ROUTES, type AdminRoute } from './admin-routes.js';
import type { AdminTarget } from './admin-target.js';

/** The path prefix every admin endpoint lives under. */
export const ADMIN_PREFIX = '/admin';

export interface AdminHandlerOptions {
  /** The bearer token; undefined turns the API off (every request answers 403 ADMIN_DISABLED). */
  readonly token: string | undefined;
  readonly target: AdminTarget;
  readonly logger: Logger;
  readonly metrics?: Pick<Metrics, 'adminRequests'>;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' } as const;

/** The path's segments after `/admin`, URL-decoded; ADMIN_BAD_REQUEST for a malformed escape. */
function segmentsOf(path: string): string[] {
  const rest = path.slice(ADMIN_PREFIX.length).replace(/^\//, '');
  try {
    return rest === '' ? [] : rest.split('/').map((s) => decodeURIComponent(s));
  } catch {
    throw new AdminRequestError(`malformed path ${path}`);
  }
}

/** Builds the handler for /admin and /admin/*. */
export function createAdminHandler(options: AdminHandlerOptions): RequestHandler {
  const logger = componentLogger(options.logger, 'admin');
  const check = options.token === undefined ? undefined : bearerCheck(options.token);

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = pathOf(req);
    let route: AdminRoute | undefined;
    let endpoint = 'unknown';
    let params: Readonly<Record<string, string>> = {};
    let status = 200;
    let body: unknown;
    const headers: Record<string, string> = {};
    try {
      const segments = segmentsOf(path);
      const candidates = ADMIN_ROUTES.flatMap((r) => { const p = r.match(segments); return p === null ? [] : [{ route: r, params: p }]; });
      const chosen = candidates.find((c) => c.route.method === req.method) ?? candidates[0];
      route = chosen?.route;
      endpoint = route?.endpoint ?? 'unknown';
      params = chosen?.params ?? {};
      if (check === undefined) {
        throw new AdminDisabledError('the admin API is off: no admin.token is configured (set admin.token or VERDICT_ADMIN__TOKEN)');
      }
      if (!check(req.headers.authorization)) {
        headers['www-authenticate'] = 'Bearer';
        throw new AdminAuthError(req.headers.authorization === undefined ? 'missing bearer token (Authorization: Bearer <token>)' : 'wrong bearer token');
      }
      if (route === undefined) throw new AdminNotFoundError(`no admin endpoint at ${path}`, { details: { path } });
      if (route.method !== req.method) {
        const allow = candidates.map((c) => c.route.method).join(', ');
        headers['allow'] = allow;
        throw new AdminMethodError(`${req.method ?? '?'} is not allowed on ${path} (allowed: ${allow})`, { details: { allow } });
      }
      const text = route.method === 'POST' ? await readBody(req) : '';
      body = await route.run(options.target, params, text);
    } catch (err) {
      const error = asVerdictError(err);
      status = httpStatusOf(error);
      body = errorBody(error);
      // The rest of an oversized body is not read: close the connection rather than keep it alive.
      if (status === 413) headers['connection'] = 'close';
      if (status >= 500) logger.error({ endpoint, err: error.toJSON() }, 'admin request failed');
    }
    res.writeHead(status, { ...JSON_HEADERS, ...headers });
    res.end(`${JSON.stringify(body)}\n`);
    options.metrics?.adminRequests.inc({ endpoint, status: String(status) });
    if (route?.mutating === true || status === 401) {
      // What was done (the alias move and its swaps, the pause) or why not; never the request's headers. A
      // refused token's request is logged by endpoint only: its path is whatever the caller sent, and a
      // client that puts its token in the URL (`/admin/<token>`) would have it logged.
      const outcome = status === 200 ? { result: body } : { code: (body as { error?: { code?: string } }).error?.code };
      const what = status === 401 ? {} : { path, params };
      logger[status < 400 ? 'info' : 'warn']({ endpoint, method: req.method, ...what, status, ...outcome, remote: req.socket.remoteAddress }, 'admin request');
    }
  };

  return (req, res) => {
    serve(req, res).catch((err: unknown) => {
      // Only a failure to write the response gets here (the client went away): nothing to answer.
      logger.debug({ err: asVerdictError(err).toJSON() }, 'admin response not sent');
    });
  };
}
