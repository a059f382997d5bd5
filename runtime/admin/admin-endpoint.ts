/**
 * Where the admin API is served (config `admin`): on the metrics endpoint when it has the same host and port
 * (one listener), else on a listener of its own. Without a token it is off: no listener is opened for it, and
 * the metrics endpoint, if any, answers every /admin/* path with 403 ADMIN_DISABLED.
 */
import type { DaemonFile } from '../../config/daemon-schema.js';
import { serveHttp, type HttpEndpoint, type RequestHandler } from '../../core/metrics-server.js';
import { ADMIN_PREFIX } from './admin-handler.js';

/** `metrics`: mounted on the metrics endpoint; `own`: its own listener; `off`: no token, refused wherever asked. */
export type AdminPlacement = 'metrics' | 'own' | 'off';

export function adminPlacement(config: Pick<DaemonFile, 'admin' | 'metrics'>): AdminPlacement {
  const { admin, metrics } = config;
  if (admin.token === undefined) return 'off';
  return metrics.enabled && metrics.host === admin.host && metrics.port === admin.port ? 'metrics' : 'own';
}

/** What the metrics endpoint mounts for this placement: the admin handler unless it has its own listener. */
export function adminMounts(placement: AdminPlacement, handler: RequestHandler): Record<string, RequestHandler> {
  return placement === 'own' ? {} : { [ADMIN_PREFIX]: handler };
}

/** The admin API's own listener, when the placement says so; undefined otherwise. Rejects with SERVER_LISTEN_FAILED. */
export async function startAdminListener(placement: AdminPlacement, config: Pick<DaemonFile, 'admin'>, handler: RequestHandler): Promise<HttpEndpoint | undefined> {
  if (placement !== 'own') return undefined;
  return serveHttp(handler, { host: config.admin.host, port: config.admin.port, what: 'admin endpoint' });
}
