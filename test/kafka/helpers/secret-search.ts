/**
 * Searching output for secrets: each secret as written, base64 (standard and URL-safe, at each of the three
 * byte alignments), hex, URL-encoded and JSON-escaped, and every 8-character piece of it, so that a secret
 * leaked whole, encoded or in part is found. PEM material is searched by its base64 body (the armour lines are
 * not secret), line by line and in 16-character pieces (8 base64 characters can occur by chance in a long log).
 */

/** One secret: a name for messages, and its text. */
export interface Secret {
  readonly name: string;
  readonly value: string;
  /** PEM: search the base64 body only, in pieces of 16. */
  readonly pem?: boolean;
}

/** Somewhere output went: stdout, stderr, a response body, a CLI's output. */
export interface Place {
  readonly where: string;
  readonly text: string;
}

export interface Leak {
  readonly secret: string;
  readonly form: string;
  readonly where: string;
  /** Up to 60 characters either side of the first hit. */
  readonly context: string;
}

const windows = (text: string, size: number): string[] => {
  const out = new Set<string>();
  for (let i = 0; i + size <= text.length; i++) out.add(text.slice(i, i + size));
  return [...out];
};

/** The inner characters of `value`'s base64 when it starts `shift` bytes into a 3-byte group: what any base64 of a text containing it contains. */
function base64Inner(value: string, shift: number, url: boolean): string {
  const encoded = Buffer.concat([Buffer.alloc(shift), Buffer.from(value, 'utf8')]).toString(url ? 'base64url' : 'base64');
  // The first group mixes in the padding bytes, the last one depends on what follows: keep what is between.
  return encoded.slice(shift === 0 ? 0 : 4, encoded.length - 4);
}

/** The forms a secret is searched in, by name. */
export function secretForms(secret: Secret): Array<{ form: string; text: string }> {
  if (secret.pem === true) {
    const body = secret.value.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
    return [
      ...body.map((line, i) => ({ form: `PEM body line ${i + 1}`, text: line })),
      ...windows(body.join(''), 16).map((text) => ({ form: '16-character piece of the PEM body', text })),
    ];
  }
  const v = secret.value;
  const forms = [
    { form: 'as written', text: v },
    { form: 'URL-encoded', text: encodeURIComponent(v) },
    { form: 'JSON-escaped', text: JSON.stringify(v).slice(1, -1) },
    { form: 'hex', text: Buffer.from(v, 'utf8').toString('hex') },
    ...[0, 1, 2].flatMap((shift) => [
      { form: `base64 (shift ${shift})`, text: base64Inner(v, shift, false) },
      { form: `base64url (shift ${shift})`, text: base64Inner(v, shift, true) },
    ]),
    ...windows(v, 8).map((text) => ({ form: '8-character piece', text })),
  ];
  return forms.filter((f) => f.text.length >= 8);
}

/** Every secret form found in any place (none is the expected answer). */
export function findLeaks(places: readonly Place[], secrets: readonly Secret[]): Leak[] {
  const leaks: Leak[] = [];
  for (const secret of secrets) {
    for (const { form, text } of secretForms(secret)) {
      for (const place of places) {
        const at = place.text.indexOf(text);
        if (at >= 0) {
          leaks.push({ secret: secret.name, form, where: place.where, context: place.text.slice(Math.max(0, at - 60), at + text.length + 60) });
        }
      }
    }
  }
  return leaks;
}

/** Leaks as lines for an assertion message, one per secret and place (the first form found). */
export function describeLeaks(leaks: readonly Leak[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const l of leaks) {
    const key = `${l.secret}\u0000${l.where}`;
    if (seen.has(key)) continue;
    seen.add(key);
    lines.push(`${l.secret} (${l.form}) in ${l.where}: …${JSON.stringify(l.context)}…`);
  }
  return lines.join('\n');
}
