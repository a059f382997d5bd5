/**
 * The admin API's client: one JSON request with the bearer token, over the global fetch. An answer of any
 * status is returned, not thrown (the command prints the server's error code); only a server that cannot be
 * reached rejects, with TransportError (TRANSPORT_FAILED).
 */
import { TransportError } from '../core/errors.js';

export interface AdminClientOptions {
  /** The admin API's base, e.g. `http://127.0.0.1:9465` (a trailing slash is fine). */
  readonly url: string;
  /** The bearer token; none sends no Authorization header (the server answers 401). */
  readonly token: string | undefined;
}

/** How long one request may take, ms: a promote waits for the swap to load and warm the new version. */
const REQUEST_TIMEOUT_MS = 30_000;

/** An answer: `ok` for 2xx with the JSON body, else the server's error code and message. */
export type AdminAnswer =
  | { readonly ok: true; readonly status: number; readonly body: unknown }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string };

/** Sends `method path` (path under the base, e.g. `/admin/status`) with a JSON body for POST. */
export async function adminRequest(options: AdminClientOptions, method: 'GET' | 'POST', path: string, body?: unknown): Promise<AdminAnswer> {
  const url = `${options.url.replace(/\/+$/, '')}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        accept: 'application/json',
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    const reason = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new TransportError(`cannot reach the admin API at ${url}: ${reason}`, { cause: err, retryable: false, details: { url } });
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text.trim() === '' ? null : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (response.ok) return { ok: true, status: response.status, body: json };
  const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return {
    ok: false,
    status: response.status,
    code: typeof error?.code === 'string' ? error.code : `HTTP_${response.status}`,
    message: typeof error?.message === 'string' ? error.message : text.trim() || response.statusText,
  };
}
