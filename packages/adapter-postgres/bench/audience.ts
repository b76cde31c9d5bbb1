/**
 * The benches' audience and arguments, in one place: recipients `offset`..`offset + n` in the mixed
 * formats real lists come in (every third one written out with +55 and punctuation).
 */
export function* audience(n: number, offset = 0) {
  for (let i = 0; i < n; i++) {
    const k = offset + i;
    const local = `9${String(10_000_000 + (k % 89_999_999)).padStart(8, '0')}`;
    const ddd = 11 + (Math.floor(k / 89_999_999) % 80);
    yield { phone: k % 3 === 0 ? `+55 (${ddd}) ${local.slice(0, 5)}-${local.slice(5)}` : `55${ddd}${local}`, vars: { name: `c${k}` } };
  }
}

/** `--name value` from the command line as a number, or `fallback`. */
export const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
