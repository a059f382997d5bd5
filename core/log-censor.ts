/**
 * Censoring secrets in log lines, by field name, whatever logs them: a field named `password`, `passphrase`,
 * `token` or `authorization` (any case) at any depth up to `MAX_DEPTH`, and TLS material (`key`, `cert`, `ca`,
 * `pfx`) directly under a field named `ssl` or `tls`. A `key` anywhere else (a record's key) is kept. No
 * Verdict log line carries a secret; this keeps a future `logger.info({ kafka })`, or a library logging its
 * options, from printing one.
 *
 * It is a walk over the logged fields rather than pino's `redact` paths: those need one path per depth with
 * intermediate wildcards, which made a line ~10x slower to write (100,000 lines to /dev/null on the 2-core
 * development machine: 13-22 µs a line plain, 210-310 µs with the 56 paths, 11-20 µs with this walk, within
 * the noise of plain). The walk copies nothing unless it censors.
 */

/** What a censored field shows (the admin API's effective config shows the same: config/redact.ts). */
export const CENSORED = '[redacted]';

const SECRET_FIELDS = new Set(['password', 'passphrase', 'token', 'authorization']);
const TLS_BLOCKS = new Set(['ssl', 'tls']);
const TLS_FIELDS = new Set(['key', 'cert', 'ca', 'pfx']);
/** Levels below the line's own fields that are looked at: `{ config: { kafka: { sasl: { password } } } }` is 3. */
const MAX_DEPTH = 4;

/** The fields with every secret (above) replaced by `CENSORED`: the same object when there is none, else a copy. */
export function censorSecrets(fields: Record<string, unknown>): Record<string, unknown> {
  return censor(fields, false, 0) as Record<string, unknown>;
}

function censor(node: unknown, underTls: boolean, depth: number): unknown {
  if (typeof node !== 'object' || node === null || depth > MAX_DEPTH || ArrayBuffer.isView(node)) return node;
  if (Array.isArray(node)) {
    const items: readonly unknown[] = node;
    let copy: unknown[] | undefined;
    items.forEach((item, i) => {
      const next = censor(item, false, depth + 1);
      if (next !== item) (copy ??= [...items])[i] = next;
    });
    return copy ?? node;
  }
  let copy: Record<string, unknown> | undefined;
  const fields = node as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    const name = key.toLowerCase();
    const secret = value !== undefined && value !== null && (SECRET_FIELDS.has(name) || (underTls && TLS_FIELDS.has(name)));
    const next = secret ? CENSORED : censor(value, TLS_BLOCKS.has(name), depth + 1);
    if (next !== value) (copy ??= { ...fields })[key] = next;
  }
  return copy ?? node;
}
