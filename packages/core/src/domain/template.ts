import { hashString, seededRandom } from '../random.js';

/** WhatsApp's limit for a text message. */
export const MAX_TEXT_LENGTH = 4096;

type Node =
  | { kind: 'text'; value: string }
  | { kind: 'var'; name: string; fallback: string | undefined }
  | { kind: 'spin'; options: Node[][] };

export interface CompiledTemplate {
  source: string;
  /** Variables used without a default: a recipient lacking one cannot be rendered. */
  required: string[];
  nodes: Node[];
}

export class TemplateSyntaxError extends Error {}

/**
 * Parse `{{var}}`, `{{var|default}}` and spintax `{a|b|{c|d}}`. A literal brace that is not
 * spintax can be written `\{`/`\}`. Throws TemplateSyntaxError on unbalanced braces.
 */
export function compileTemplate(source: string): CompiledTemplate {
  let i = 0;
  const required = new Set<string>();

  const parseSeq = (inSpin: boolean): { nodes: Node[]; end: '|' | '}' | 'eof' } => {
    const nodes: Node[] = [];
    let text = '';
    const flush = () => {
      if (text) nodes.push({ kind: 'text', value: text });
      text = '';
    };
    while (i < source.length) {
      const ch = source[i]!;
      if (ch === '\\' && (source[i + 1] === '{' || source[i + 1] === '}' || source[i + 1] === '|')) {
        text += source[i + 1];
        i += 2;
      } else if (ch === '{' && source[i + 1] === '{') {
        const close = source.indexOf('}}', i + 2);
        if (close < 0) throw new TemplateSyntaxError(`unclosed "{{" at position ${i}`);
        const body = source.slice(i + 2, close);
        const bar = body.indexOf('|');
        const name = (bar < 0 ? body : body.slice(0, bar)).trim();
        if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) throw new TemplateSyntaxError(`invalid variable name "${name}" at position ${i}`);
        const fallback = bar < 0 ? undefined : body.slice(bar + 1);
        if (fallback === undefined) required.add(name);
        flush();
        nodes.push({ kind: 'var', name, fallback });
        i = close + 2;
      } else if (ch === '{') {
        i++;
        const options: Node[][] = [];
        for (;;) {
          const part = parseSeq(true);
          options.push(part.nodes);
          if (part.end === '}') break;
          if (part.end === 'eof') throw new TemplateSyntaxError('unclosed spintax "{": close it with "}" or escape it as "\\{"');
        }
        flush();
        nodes.push({ kind: 'spin', options });
      } else if (inSpin && (ch === '|' || ch === '}')) {
        i++;
        flush();
        return { nodes, end: ch };
      } else if (ch === '}') {
        throw new TemplateSyntaxError(`unexpected "}" at position ${i}: escape it as "\\}"`);
      } else {
        text += ch;
        i++;
      }
    }
    flush();
    return { nodes, end: 'eof' };
  };

  const { nodes } = parseSeq(false);
  // Variables inside spintax options are only required if every option needs them; keep it simple and strict.
  return { source, required: [...required], nodes };
}

export class MissingVariableError extends Error {
  constructor(readonly variable: string) {
    super(`variable "${variable}" has no value and no default`);
  }
}

/**
 * Render deterministically: the same template, variables and `seedKey` (the recipient's
 * idempotency key) always give the same text, so a resumed send is the one first planned.
 */
export function renderTemplate(template: CompiledTemplate, vars: Record<string, string>, seedKey: string): string {
  const random = seededRandom(hashString(seedKey));
  const out: string[] = [];
  const walk = (nodes: Node[]) => {
    for (const node of nodes) {
      if (node.kind === 'text') out.push(node.value);
      else if (node.kind === 'var') {
        // Own properties only: `{{constructor}}` or `{{__proto__}}` must not read Object.prototype.
        const value = Object.hasOwn(vars, node.name) ? vars[node.name] : undefined;
        if (value !== undefined && value !== '') out.push(value);
        else if (node.fallback !== undefined) out.push(node.fallback);
        else throw new MissingVariableError(node.name);
      } else {
        walk(node.options[Math.floor(random() * node.options.length)]!);
      }
    }
  };
  walk(template.nodes);
  return out.join('').trim();
}

/** Pick one of several templates for a recipient, deterministically. */
export function pickTemplate<T>(templates: readonly T[], seedKey: string): T {
  return templates[hashString(`tpl:${seedKey}`) % templates.length]!;
}
