/**
 * Reading an admin request's JSON body: bounded in size, parsed, and validated with a zod schema whose
 * field paths end up in the 400's message.
 */
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { AdminBodyTooLargeError, AdminRequestError } from '../../core/errors.js';
import { formatZodError } from '../../core/zod-error.js';

/** The largest body an admin request may carry, bytes: every endpoint's body is a few fields. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * The request's body as text, at most `limit` bytes. Rejects with AdminBodyTooLargeError (ADMIN_BODY_TOO_LARGE)
 * as soon as the declared length or the bytes read pass the bound, without reading the rest.
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const tooLarge = () => new AdminBodyTooLargeError(`request body is larger than ${limit} bytes`, { details: { limitBytes: limit } });
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
    // A client that goes away mid-body: settle (no-op after 'end'), so the request's handler does not wait for ever.
    req.once('close', () => reject(new AdminRequestError('the request closed before its body was read')));
  });
}

/** Parses a body as JSON (an empty body is `{}`) and validates it. Rejects with AdminRequestError (ADMIN_BAD_REQUEST). */
export function parseBody<S extends z.ZodType>(text: string, schema: S, what: string): z.output<S> {
  let json: unknown = {};
  if (text.trim() !== '') {
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new AdminRequestError(`${what}: the body is not JSON (${(err as Error).message})`);
    }
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new AdminRequestError(formatZodError(parsed.error, `${what} body`));
  return parsed.data;
}
