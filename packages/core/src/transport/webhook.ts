/** Webhook headers as Node's http module (or Express) gives them. */
export type WebhookHeaders = Record<string, string | string[] | undefined>;

/** A header by case-insensitive name (the first value of a repeated header), from plain headers or a fetch `Headers`. */
export function headerValue(headers: WebhookHeaders | Headers | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers as WebhookHeaders)) {
    if (key.toLowerCase() !== wanted) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') return first;
  }
  return undefined;
}
