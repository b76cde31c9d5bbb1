import { seededRandom } from '../random.js';

// Brazilian area codes (DDD) in service: numbers built on them pass libphonenumber's full metadata.
const BR_DDD = [
  11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43, 44, 45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67,
  68, 69, 71, 73, 74, 75, 77, 79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99,
] as const;

/**
 * `n` distinct, valid Brazilian mobile numbers in E.164 digits without '+'
 * (`55` + DDD + `9` + 8 digits), e.g. `5511987654321`. Deterministic per `seed`.
 */
export function samplePhones(n: number, seed = 1): string[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`samplePhones: n must be a whole number >= 0, got ${n}`);
  const random = seededRandom(seed);
  const seen = new Set<string>();
  const out: string[] = [];
  while (out.length < n) {
    const ddd = BR_DDD[Math.floor(random() * BR_DDD.length)]!;
    // After the mobile 9, real subscriber numbers start with 6-9; the other 7 digits are free.
    const first = 6 + Math.floor(random() * 4);
    const rest = Math.floor(random() * 10_000_000)
      .toString()
      .padStart(7, '0');
    const phone = `55${ddd}9${first}${rest}`;
    if (seen.has(phone)) continue;
    seen.add(phone);
    out.push(phone);
  }
  return out;
}
