/**
 * The admin API's bearer token check. Both sides are hashed with sha256 first, so the comparison is
 * `timingSafeEqual` over two 32-byte digests: its time depends on neither the token's length nor on how
 * many leading characters a guess got right.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** A check against one configured token (kept only as its digest). */
export function bearerCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token);
  return (authorization) => {
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    // A missing or malformed header is still compared, against nothing, so every refusal costs the same.
    return timingSafeEqual(digest(match?.[1] ?? ''), expected) && match !== null;
  };
}
