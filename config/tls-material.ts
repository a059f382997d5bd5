/**
 * Checks `kafka.ssl`'s PEM material at load with Node's crypto, so that a wrong passphrase or a malformed
 * PEM is refused naming the field, instead of surfacing as repeated "Failed to connect to seed broker" lines
 * (Node only parses the material when the TLS connection is made).
 *
 * The key must parse (`createPrivateKey`, decrypted with `passphrase` when encrypted), every certificate of
 * `cert` and of each `ca` item must parse (`X509Certificate`; a bundle may hold several), and when there is
 * exactly one key and one cert item the key must be the cert's (its first certificate: the leaf).
 *
 * Messages name the field path and the rule, and at most Node's error code (`ERR_OSSL_…`): never the PEM,
 * the passphrase or Node's error message, and no `cause` is attached (nothing of the material can leak
 * through a logged error).
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { ConfigError } from '../core/errors.js';
import type { KafkaTls } from './kafka-options.js';

/** One PEM item as given: its field path (`kafka.ssl.ca[1]`, `kafka.ssl.keyFile`) and its text. */
interface PemItem {
  readonly path: string;
  readonly text: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The items of one PEM field: inline (a string or a list) or its file (already resolved and checked readable). */
function itemsOf(inline: string | readonly string[] | undefined, file: string | undefined, field: string, fileField: string, source: string): PemItem[] {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${source}: kafka.ssl.${fileField}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
    return [{ path: `kafka.ssl.${fileField}`, text }];
  }
  if (inline === undefined) return [];
  if (typeof inline === 'string') return [{ path: `kafka.ssl.${field}`, text: inline }];
  return inline.map((text, i) => ({ path: `kafka.ssl.${field}[${i}]`, text }));
}

/** Node's error code only (a fixed identifier such as `ERR_OSSL_BAD_DECRYPT`), never its message. */
const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? code : 'unreadable';
};

function parseKey(item: PemItem, passphrase: string | undefined, source: string): KeyObject {
  try {
    return createPrivateKey(passphrase === undefined ? { key: item.text, format: 'pem' } : { key: item.text, format: 'pem', passphrase });
  } catch (err) {
    // PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`) and legacy (`Proc-Type: 4,ENCRYPTED`) encrypted keys both say ENCRYPTED.
    const encrypted = item.text.includes('ENCRYPTED');
    const why = encrypted && passphrase === undefined ? 'is an encrypted private key and kafka.ssl.passphrase is not set'
      : encrypted ? `cannot be decrypted with kafka.ssl.passphrase (wrong passphrase?) (${codeOf(err)})`
        : `is not a PEM private key (${codeOf(err)})`;
    throw new ConfigError(`${source}: ${item.path}: ${why}`);
  }
}

function parseCerts(item: PemItem, source: string): X509Certificate[] {
  const blocks = item.text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${source}: ${item.path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(`${source}: ${item.path}: certificate ${i + 1} of ${blocks.length} is not a valid PEM certificate (${codeOf(err)})`);
    }
  });
}

/**
 * Throws `ConfigError` (CONFIG_INVALID) naming the first field whose TLS material Node cannot use: a key that
 * does not parse or decrypt, a cert or CA without a parseable certificate, or a key that is not the cert's.
 * File fields must already be absolute and readable (config/load-daemon.ts resolves them); they are read once.
 */
export function checkTlsMaterial(ssl: KafkaTls, source: string): void {
  const keys = itemsOf(ssl.key, ssl.keyFile, 'key', 'keyFile', source).map((item) => ({ item, key: parseKey(item, ssl.passphrase, source) }));
  const certs = itemsOf(ssl.cert, ssl.certFile, 'cert', 'certFile', source).map((item) => ({ item, certs: parseCerts(item, source) }));
  for (const item of itemsOf(ssl.ca, ssl.caFile, 'ca', 'caFile', source)) parseCerts(item, source);
  const [onlyKey] = keys;
  const [onlyCert] = certs;
  // Several keys or certs pair up by Node's own rules (by type); one of each must simply belong together.
  if (keys.length === 1 && certs.length === 1 && onlyKey !== undefined && onlyCert !== undefined) {
    const leaf = onlyCert.certs[0];
    let matches: boolean;
    try {
      matches = leaf === undefined || leaf.checkPrivateKey(onlyKey.key);
    } catch {
      matches = false;
    }
    if (!matches) {
      throw new ConfigError(`${source}: ${onlyKey.item.path}: is not the private key of the certificate in ${onlyCert.item.path}`);
    }
  }
}
