/**
 * Content hashes of model files, and a cache of hashes already verified.
 *
 * A pipeline resolves the same model versions on every start and every reload; hashing a large model each
 * time would be wasted work. A verified hash is reused while the file's identity and stat fingerprint
 * (inode, size, mtime, ctime) are unchanged. Editing a file in place within the filesystem's timestamp
 * granularity and keeping its size is not caught by the cache: a fresh process (or `clear()`) always re-hashes.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256Bytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function fingerprint(s: Stats): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

export class HashCache {
  /** path → the fingerprint the file had when hashed, and the hash. */
  private readonly entries = new Map<string, { readonly fingerprint: string; readonly sha256: string }>();
  private hashed = 0;

  /** How many times a file was actually read and hashed: what the cache exists to keep low. */
  get filesHashed(): number {
    return this.hashed;
  }

  /** The file's sha256 and size, hashing only when the file changed since it was last hashed here. */
  async hash(path: string): Promise<{ sha256: string; size: number; cached: boolean }> {
    const before = await stat(path);
    const known = this.entries.get(path);
    if (known !== undefined && known.fingerprint === fingerprint(before)) {
      return { sha256: known.sha256, size: before.size, cached: true };
    }
    const sha256 = await sha256File(path);
    this.hashed++;
    // Only remember the hash if the file did not change while it was read, else the entry could vouch for
    // bytes that were never hashed.
    const after = await stat(path);
    if (fingerprint(after) === fingerprint(before)) this.entries.set(path, { fingerprint: fingerprint(after), sha256 });
    return { sha256, size: after.size, cached: false };
  }

  /** Records a hash computed elsewhere (the registry hashes the bytes it writes). */
  async remember(path: string, sha256: string): Promise<void> {
    this.entries.set(path, { fingerprint: fingerprint(await stat(path)), sha256 });
  }

  clear(): void {
    this.entries.clear();
  }
}
