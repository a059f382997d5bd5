/**
 * A config with its secrets replaced, for showing (the admin API's effective config): the Kafka SASL
 * password, TLS keys, certificates and CAs, the admin token, and whatever else a key name marks as secret
 * material, at any depth. Redaction goes by key name, not by schema, so a secret field added later is
 * covered as long as its name says what it is.
 */

/** What a secret value is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Key names whose values are secret material: passwords and passphrases, secrets, tokens, credentials, and
 * the TLS fields (`key`, `cert`, `ca`, `pfx`) and anything ending in `key` such as `privateKey` or `apiKey`.
 */
const SECRET_KEY = /pass(word|phrase)|secret|token|credential|^(key|cert|ca|pfx)$|(private|api|access|signing)_?key$/i;

/**
 * Whether a config key's value is secret material (above). The one rule for redaction here and for taking an
 * environment override verbatim (config/load-daemon.ts): a secret is never parsed, so never echoed by a parser.
 */
export const isSecretKey = (key: string): boolean => SECRET_KEY.test(key);

/** A redacted copy and the dotted paths that were redacted (list items as `path.0`). */
export interface Redacted<T> {
  readonly value: T;
  readonly paths: readonly string[];
}

/**
 * Copies plain data (objects, arrays, scalars) replacing the value of every secret key (above) with
 * `REDACTED`; an absent or null secret stays as it was, so the output still says whether one is set. The
 * input is not modified.
 */
export function redactSecrets<T>(value: T): Redacted<T> {
  const paths: string[] = [];
  const walk = (node: unknown, path: string): unknown => {
    if (Array.isArray(node)) return node.map((item, i) => walk(item, `${path}.${i}`));
    if (typeof node !== 'object' || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(node)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (isSecretKey(key) && child !== undefined && child !== null && child !== false) {
        out[key] = REDACTED;
        paths.push(at);
      } else {
        out[key] = walk(child, at);
      }
    }
    return out;
  };
  return { value: walk(value, '') as T, paths };
}
