import { z } from 'zod';
import { validate } from '@disparo/core/transport';

/**
 * An approved WhatsApp template with its parameters filled in for one recipient. This is what the
 * transport sends as `type: "template"`. It reaches the transport either as `message.template`
 * (the field a first-class campaign option will fill) or as a template directive in the text
 * (`#template …`, see `cloudApiTemplateText`), which works with today's campaign API.
 */
export interface CloudApiTemplate {
  /** The template's name in WhatsApp Manager, e.g. `order_shipped`. */
  name: string;
  /** The template's language code, e.g. `pt_BR`, `en_US`, `es`. */
  language: string;
  /** Header parameter: text for a `{{1}}` header, or a media link for an image/video/document header. */
  header?: { type: 'text'; text: string } | { type: 'image' | 'video' | 'document'; link: string; filename?: string };
  /** Body parameters: in order (`{{1}}`, `{{2}}`, …) or by name for templates with named parameters. */
  body?: string[] | Record<string, string>;
  /** Button parameters: a dynamic URL suffix, a quick-reply payload, or a coupon code. */
  buttons?: Array<{ index: number; type: 'url' | 'quick_reply' | 'copy_code'; value: string }>;
}

const NAME = /^[a-z0-9_]{1,512}$/;
const LANGUAGE = /^[a-z]{2,3}(_[A-Z]{2,4})?$/;

export const templateSchema = z
  .object({
    name: z.string().regex(NAME, 'must be a template name: lower-case letters, digits and _'),
    language: z.string().regex(LANGUAGE, 'must be a language code such as pt_BR, en_US or es'),
    header: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('text'), text: z.string().min(1) }).strict(),
        z.object({ type: z.enum(['image', 'video', 'document']), link: z.url({ protocol: /^https?$/ }), filename: z.string().min(1).optional() }).strict(),
      ])
      .optional(),
    body: z.union([z.array(z.string()), z.record(z.string().regex(/^[a-z0-9_]+$/, 'named parameters are lower-case letters, digits and _'), z.string())]).optional(),
    buttons: z
      .array(z.object({ index: z.number().int().min(0).max(9), type: z.enum(['url', 'quick_reply', 'copy_code']), value: z.string().min(1) }).strict())
      .optional(),
  })
  .strict();

/** The first line of a template directive. */
export const TEMPLATE_DIRECTIVE = '#template';

/** A template directive that cannot be read. `scope` says whether the campaign's text is wrong or one recipient's value. */
export class TemplateTextError extends Error {
  constructor(
    message: string,
    readonly scope: 'campaign' | 'recipient',
  ) {
    super(message);
  }
}

/** Whether a (rendered) text is a template directive. */
export function isTemplateText(text: string): boolean {
  return text.startsWith(`${TEMPLATE_DIRECTIVE} `) || text.startsWith(`${TEMPLATE_DIRECTIVE}\t`);
}

const KEY_LINE = /^([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)\s*:\s?(.*)$/;

/**
 * Read a template directive (a campaign text after Disparo rendered it for one recipient):
 *
 * ```
 * #template order_shipped pt_BR
 * header: {{city}}                  (or header.image: https://…, header.video: …, header.document: …)
 * body: {{name}}                    ({{1}}; one line per parameter, in order)
 * body: {{order}}                   ({{2}})
 * body.first_name: {{name}}         (a named parameter, for templates created with names)
 * button.0.url: {{coupon_path}}     (dynamic URL suffix of button 0; also .quick_reply and .copy_code)
 * ```
 *
 * Returns null when the text is not a directive. Throws `TemplateTextError` when it is one but cannot
 * be read: a line with an unknown key is the campaign's mistake; a line without a key is a value
 * that contained a line break, which template parameters cannot carry (that recipient's data).
 */
export function parseTemplateText(text: string): CloudApiTemplate | null {
  if (!isTemplateText(text)) return null;
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const head = lines[0]!.slice(TEMPLATE_DIRECTIVE.length).trim().split(/\s+/);
  if (head.length !== 2 || !NAME.test(head[0]!) || !LANGUAGE.test(head[1]!)) {
    throw new TemplateTextError(`the first line must be "${TEMPLATE_DIRECTIVE} <name> <language>", e.g. "${TEMPLATE_DIRECTIVE} order_shipped pt_BR"; got "${lines[0]}"`, 'campaign');
  }
  const template: CloudApiTemplate = { name: head[0]!, language: head[1]! };
  const positional: string[] = [];
  const named: Record<string, string> = {};
  const buttons: NonNullable<CloudApiTemplate['buttons']> = [];

  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const match = KEY_LINE.exec(line);
    if (!match) {
      throw new TemplateTextError(`line ${i + 1} ("${line.slice(0, 40)}") has no "key:"; a variable value probably contains a line break, which template parameters cannot carry`, 'recipient');
    }
    const key = match[1]!;
    const value = match[2]!.trim();
    const where = `line ${i + 1} (${key})`;
    if (value === '') throw new TemplateTextError(`${where} has an empty value; give the variable a value or a default ({{name|cliente}})`, 'recipient');
    const parts = key.split('.');
    if (key === 'body') positional.push(value);
    else if (parts[0] === 'body' && parts.length === 2) named[parts[1]!] = value;
    else if (key === 'header') template.header = { type: 'text', text: value };
    else if (parts[0] === 'header' && parts.length === 2 && (parts[1] === 'image' || parts[1] === 'video' || parts[1] === 'document')) {
      template.header = { type: parts[1], link: value };
    } else if (parts[0] === 'button' && parts.length === 3 && /^\d$/.test(parts[1]!) && (parts[2] === 'url' || parts[2] === 'quick_reply' || parts[2] === 'copy_code')) {
      buttons.push({ index: Number(parts[1]), type: parts[2], value });
    } else {
      throw new TemplateTextError(`${where}: unknown key; use body, body.<name>, header, header.image|video|document, or button.<index>.url|quick_reply|copy_code`, 'campaign');
    }
  }
  if (positional.length > 0 && Object.keys(named).length > 0) throw new TemplateTextError('use either positional "body:" lines or named "body.<name>:" lines, not both', 'campaign');
  if (positional.length > 0) template.body = positional;
  else if (Object.keys(named).length > 0) template.body = named;
  if (buttons.length > 0) template.buttons = buttons;
  return template;
}

/**
 * Build the campaign text that names a template (the inverse of `parseTemplateText`). Values are
 * Disparo template text, rendered per recipient: `{{name}}`, `{{name|cliente}}`, spintax.
 *
 * ```ts
 * engine.createCampaign({
 *   name: 'shipping',
 *   template: cloudApiTemplateText({ name: 'order_shipped', language: 'pt_BR', body: ['{{name}}', '{{order}}'] }),
 *   …
 * });
 * ```
 */
export function cloudApiTemplateText(template: CloudApiTemplate): string {
  const t = validate(templateSchema, template, 'Cloud API template');
  const lines = [`${TEMPLATE_DIRECTIVE} ${t.name} ${t.language}`];
  if (t.header) lines.push(t.header.type === 'text' ? `header: ${t.header.text}` : `header.${t.header.type}: ${t.header.link}`);
  if (Array.isArray(t.body)) for (const v of t.body) lines.push(`body: ${v}`);
  else if (t.body) for (const [k, v] of Object.entries(t.body)) lines.push(`body.${k}: ${v}`);
  for (const b of t.buttons ?? []) lines.push(`button.${b.index}.${b.type}: ${b.value}`);
  return lines.join('\n');
}

/** Meta rejects template parameters with line breaks, tabs or more than 4 consecutive spaces. */
const BAD_PARAMETER = /[\n\t]| {5,}/;

/**
 * Meta's `template` object for a send: `{ name, language: { code }, components? }`. A campaign's media
 * (image, video, document) becomes the header when the template names none.
 */
export function templatePayload(template: CloudApiTemplate, media?: { url: string; type: 'image' | 'video' | 'document' | 'audio'; fileName?: string | null | undefined } | null): Record<string, unknown> {
  const components: Array<Record<string, unknown>> = [];
  const header = template.header ?? (media && media.type !== 'audio' ? { type: media.type, link: media.url, ...(media.fileName ? { filename: media.fileName } : {}) } : undefined);
  if (header) {
    const parameter =
      header.type === 'text'
        ? { type: 'text', text: header.text }
        : { type: header.type, [header.type]: { link: header.link, ...('filename' in header && header.filename && header.type === 'document' ? { filename: header.filename } : {}) } };
    components.push({ type: 'header', parameters: [parameter] });
  }
  if (Array.isArray(template.body) && template.body.length > 0) {
    components.push({ type: 'body', parameters: template.body.map((text) => ({ type: 'text', text })) });
  } else if (template.body && !Array.isArray(template.body) && Object.keys(template.body).length > 0) {
    components.push({ type: 'body', parameters: Object.entries(template.body).map(([name, text]) => ({ type: 'text', parameter_name: name, text })) });
  }
  for (const b of [...(template.buttons ?? [])].sort((x, y) => x.index - y.index)) {
    const parameter = b.type === 'url' ? { type: 'text', text: b.value } : b.type === 'quick_reply' ? { type: 'payload', payload: b.value } : { type: 'coupon_code', coupon_code: b.value };
    components.push({ type: 'button', sub_type: b.type, index: String(b.index), parameters: [parameter] });
  }
  return { name: template.name, language: { code: template.language }, ...(components.length > 0 ? { components } : {}) };
}

/** A parameter value Meta would refuse, with why; null when fine. */
export function badTemplateParameter(template: CloudApiTemplate): string | null {
  const values = [...(Array.isArray(template.body) ? template.body : Object.values(template.body ?? {})), ...(template.header?.type === 'text' ? [template.header.text] : [])];
  for (const v of values) if (BAD_PARAMETER.test(v)) return `"${v.slice(0, 40)}" contains a line break, a tab or more than 4 spaces in a row`;
  return null;
}
