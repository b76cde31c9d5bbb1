import { Readable } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';
import { ValidationError } from '@disparo/core';

/**
 * Recipient uploads as CSV, read as a stream (a file of any size holds one record in memory at a time):
 * a header row naming one phone column (`phone`, `telefone`, `whatsapp`, `numero`, `número`,
 * `celular`); every other named column becomes a template variable.
 *
 * Encoding: a declared `charset` is honoured; otherwise a BOM decides (UTF-8, UTF-16), then the bytes:
 * valid UTF-8 stays UTF-8, anything else is Windows-1252, which is what Excel in Brazil saves as "CSV".
 * Delimiter: `,`, `;` (Excel with a Brazilian locale) or tab, whichever the header line uses most.
 */

export const PHONE_HEADERS = ['phone', 'telefone', 'whatsapp', 'numero', 'número', 'celular'];
/** Longest record accepted; past it the file is almost surely broken (a quote never closed). */
export const MAX_RECORD_BYTES = 1 << 20;
const MAX_LINES_LISTED = 20;

export type CsvEncoding = 'utf-8' | 'windows-1252' | 'utf-16le' | 'utf-16be';

/** What the reader found, filled in while the recipients are consumed. */
export interface CsvReport {
  encoding: CsvEncoding;
  delimiter: ',' | ';' | '\t';
  /** The header of the phone column, as written. */
  phoneColumn: string;
  /** Data rows read (blank rows are not rows). */
  rows: number;
  /** Rows whose phone cell is empty: counted by the import as invalid. */
  emptyPhone: number;
  /** Their line numbers in the file (the first 20). */
  emptyPhoneLines: number[];
  /** NUL characters removed from cells (PostgreSQL cannot store them; spreadsheets leave them by mistake). */
  nulRemoved: number;
  /** Lines where NULs were removed (the first 20). */
  nulLines: number[];
}

export interface CsvRecipient {
  phone: string;
  vars: Record<string, string>;
}

/** A `charset` parameter we cannot decode: the route answers 415. */
export class UnsupportedCharsetError extends Error {
  constructor(readonly charset: string) {
    super(`Unsupported charset "${charset}": send the CSV as utf-8, windows-1252 (Excel's "CSV"), iso-8859-1 or utf-16, or leave the charset out to have it detected.`);
  }
}

/** Resolve a `charset` label (undefined: detect). Throws UnsupportedCharsetError. */
export function resolveCharset(label: string | undefined): CsvEncoding | undefined {
  if (label === undefined || label.trim() === '') return undefined;
  let encoding: string;
  try {
    // The WHATWG labels: latin1, iso-8859-1, ascii and cp1252 all mean windows-1252, as browsers read them.
    encoding = new TextDecoder(label.trim()).encoding;
  } catch {
    throw new UnsupportedCharsetError(label);
  }
  if (encoding === 'utf-8' || encoding === 'windows-1252' || encoding === 'utf-16le' || encoding === 'utf-16be') return encoding;
  throw new UnsupportedCharsetError(label);
}

const invalid = (message: string, path = 'csv') => new ValidationError(`Invalid CSV: ${message}`, [{ path, message }]);

/**
 * Read recipients from CSV bytes. The iterable yields `{ phone, vars }` for each data row (rows with
 * an empty phone too: the import counts them as invalid); `report` is complete once it is exhausted.
 * Mistakes in the file are `ValidationError`s naming the line or the column.
 */
export function readCsvRecipients(bytes: AsyncIterable<Uint8Array>, options: { charset?: string } = {}): { recipients: AsyncIterable<CsvRecipient>; report: CsvReport } {
  const declared = resolveCharset(options.charset);
  const report: CsvReport = { encoding: declared ?? 'utf-8', delimiter: ',', phoneColumn: '', rows: 0, emptyPhone: 0, emptyPhoneLines: [], nulRemoved: 0, nulLines: [] };
  return { recipients: recipientsOf(decodeCsv(bytes, declared, report), report), report };
}

async function* recipientsOf(text: AsyncIterable<string>, report: CsvReport): AsyncGenerator<CsvRecipient> {
  const { delimiter, chunks } = await sniffDelimiter(text);
  report.delimiter = delimiter;
  const parser = parse({
    delimiter,
    info: true,
    bom: true,
    relax_quotes: true,
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
  });
  const source = Readable.from(chunks, { objectMode: false });
  source.on('error', (error) => parser.destroy(error));
  source.pipe(parser);

  let names: string[] | null = null;
  let phoneIndex = -1;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = info.lines;
      const cells = record.map((cell) => withoutNul(cell, line, report));
      if (cells.every((cell) => cell.trim() === '')) continue;
      if (names === null) {
        names = cells.map((cell) => cell.trim());
        phoneIndex = phoneColumn(names);
        report.phoneColumn = names[phoneIndex]!;
        continue;
      }
      report.rows++;
      const phone = (cells[phoneIndex] ?? '').trim();
      if (phone === '') {
        report.emptyPhone++;
        if (report.emptyPhoneLines.length < MAX_LINES_LISTED) report.emptyPhoneLines.push(line);
      }
      // Own properties only: a column named `__proto__` or `constructor` is a variable like any other.
      const vars: Record<string, string> = {};
      names.forEach((name, i) => {
        if (i !== phoneIndex && name && cells[i] !== undefined) Object.defineProperty(vars, name, { value: cells[i]!.trim(), enumerable: true, writable: true, configurable: true });
      });
      yield { phone, vars };
    }
  } catch (error) {
    throw isCsvError(error) ? invalid(describeCsvError(error), `csv.line.${lineOf(error)}`) : error;
  } finally {
    parser.destroy();
    source.destroy();
  }
  if (names === null) throw invalid('the file is empty: the first row must be a header naming the phone column');
}

function withoutNul(cell: string, line: number, report: CsvReport): string {
  if (!cell.includes('\0')) return cell;
  const clean = cell.replaceAll('\0', '');
  report.nulRemoved += cell.length - clean.length;
  if (report.nulLines.at(-1) !== line && report.nulLines.length < MAX_LINES_LISTED) report.nulLines.push(line);
  return clean;
}

/** The phone column's index; a header without one, with two, or with a name twice is refused. */
function phoneColumn(names: string[]): number {
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    if (!name) return;
    const key = name.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      throw invalid(`the header names the column "${name}" twice (columns ${first + 1} and ${i + 1}); rename or remove one of them`, 'csv.header');
    }
    seen.set(key, i);
  });
  const phones = names.flatMap((name, i) => (PHONE_HEADERS.includes(name.toLowerCase()) ? [i] : []));
  if (phones.length === 0) throw invalid(`no phone column: name one of ${PHONE_HEADERS.join(', ')} in the header row`, 'csv.header');
  if (phones.length > 1) {
    const list = phones.map((i) => `"${names[i]}" (column ${i + 1})`).join(' and ');
    throw invalid(`the header names a phone column more than once: ${list}. Keep one phone column, or rename the others (e.g. "telefone2") to use them as template variables`, 'csv.header');
  }
  return phones[0]!;
}

/** Read text until the end of the header line (at most 64 KB) and count the candidate delimiters in it, outside quotes. */
async function sniffDelimiter(text: AsyncIterable<string>): Promise<{ delimiter: ',' | ';' | '\t'; chunks: AsyncIterable<string> }> {
  const iterator = text[Symbol.asyncIterator]();
  const head: string[] = [];
  let length = 0;
  let done = false;
  while (length < 65_536) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    head.push(next.value);
    length += next.value.length;
    if (next.value.includes('\n')) break;
  }
  const start = head.join('');
  const counts = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of start) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) break;
    else if (!quoted && (ch === ',' || ch === ';' || ch === '\t')) counts[ch]++;
  }
  const delimiter = counts[';'] > counts[','] && counts[';'] >= counts['\t'] ? ';' : counts['\t'] > counts[','] ? '\t' : ',';
  async function* chunks() {
    if (start) yield start;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { delimiter, chunks: chunks() };
}

/**
 * Bytes to text. Until the first non-ASCII byte, UTF-8 and Windows-1252 agree; at that byte the rest
 * of the chunk decides: valid UTF-8 (a Windows-1252 accent followed by what UTF-8 expects is rare in
 * real text) or Windows-1252. A file decided UTF-8 that later has a byte UTF-8 cannot read is refused
 * with its line rather than stored with "\uFFFD" in place of letters.
 */
async function* decodeCsv(bytes: AsyncIterable<Uint8Array>, declared: CsvEncoding | undefined, report: CsvReport): AsyncGenerator<string> {
  let mode: CsvEncoding | 'sniff' | 'start' = declared ?? 'start';
  let pending: Buffer = Buffer.alloc(0);
  let lines = 1;
  let atStart = true;
  let utf16: TextDecoder | null = null;
  const emit = (text: string) => {
    if (text) atStart = false;
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++;
    return text;
  };
  const notUtf8 = (at: number, buffer: Buffer) => {
    let line = lines;
    for (let i = 0; i < at; i++) if (buffer[i] === 0x0a) line++;
    const why = declared === 'utf-8' ? 'the request says charset=utf-8' : 'the lines before it are UTF-8';
    return invalid(
      `line ${line} is not valid UTF-8 but ${why}. Save the file as "CSV UTF-8", or send it with "content-type: text/csv; charset=windows-1252" if it comes from Excel's plain "CSV"`,
      `csv.line.${line}`,
    );
  };

  const step = function* (chunk: Buffer, end: boolean): Generator<string> {
    let buffer = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    pending = Buffer.alloc(0);
    if (mode === 'start') {
      if (buffer.length < 3 && !end) {
        pending = buffer;
        return;
      }
      if (buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf) mode = 'utf-8';
      else if (buffer[0] === 0xff && buffer[1] === 0xfe) mode = 'utf-16le';
      else if (buffer[0] === 0xfe && buffer[1] === 0xff) mode = 'utf-16be';
      else mode = 'sniff';
      if (mode !== 'sniff') report.encoding = mode;
    }
    if (mode === 'utf-16le' || mode === 'utf-16be') {
      utf16 ??= new TextDecoder(mode);
      yield emit(utf16.decode(buffer, { stream: !end }));
      return;
    }
    if (mode === 'sniff') {
      const first = buffer.findIndex((b) => b >= 0x80);
      if (first < 0) {
        yield emit(buffer.toString('latin1'));
        return;
      }
      const check = validUtf8(buffer, first);
      if (check.invalidAt >= 0) mode = 'windows-1252';
      else if (check.validEnd > first) mode = 'utf-8';
      else if (!end) {
        // Only the start of a multi-byte sequence so far: wait for the next chunk.
        if (first > 0) yield emit(buffer.toString('latin1', 0, first));
        pending = buffer.subarray(first);
        return;
      } else mode = 'windows-1252';
      report.encoding = mode;
    }
    if (mode === 'windows-1252') {
      yield emit(decodeWindows1252(buffer));
      return;
    }
    // utf-8; a BOM is dropped at the very start only (elsewhere U+FEFF is text)
    let from = 0;
    if (atStart && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf) from = 3;
    const check = validUtf8(buffer, from);
    if (check.invalidAt >= 0) throw notUtf8(check.invalidAt, buffer);
    if (end && check.validEnd < buffer.length) throw notUtf8(check.validEnd, buffer);
    yield emit(buffer.toString('utf8', from, check.validEnd));
    pending = buffer.subarray(check.validEnd);
  };

  for await (const chunk of bytes) {
    if (chunk.length > 0) yield* step(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), false);
  }
  yield* step(Buffer.alloc(0), true);
}

// Windows-1252 is Latin-1 except for 0x80-0x9F (€, curly quotes, dashes, Š, Œ...). Node 20's
// TextDecoder('windows-1252') decodes those as C1 controls, like Latin-1, so the table is ours.
const WINDOWS_1252_80_9F = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008DŽ\u008F\u0090‘’“”•–—˜™š›œ\u009DžŸ';

export function decodeWindows1252(bytes: Buffer): string {
  const text = bytes.toString('latin1');
  return /[\u0080-\u009f]/.test(text) ? text.replace(/[\u0080-\u009f]/g, (c) => WINDOWS_1252_80_9F[c.charCodeAt(0) - 0x80]!) : text;
}

/**
 * Validate UTF-8 from `from`: `invalidAt` is the first byte that cannot be UTF-8 (-1 if none);
 * `validEnd` is where the valid text ends (before a multi-byte sequence cut off by the chunk's end).
 */
export function validUtf8(bytes: Uint8Array, from = 0): { invalidAt: number; validEnd: number } {
  let i = from;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min = 0x80;
    let max = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) min = 0xa0; // no overlong forms
      if (b === 0xed) max = 0x9f; // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) min = 0x90;
      if (b === 0xf4) max = 0x8f; // nothing past U+10FFFF
    } else return { invalidAt: i, validEnd: i };
    for (let k = 1; k <= need; k++) {
      if (i + k >= bytes.length) return { invalidAt: -1, validEnd: i };
      const c = bytes[i + k]!;
      if (k === 1 ? c < min || c > max : c < 0x80 || c > 0xbf) return { invalidAt: i, validEnd: i };
    }
    i += need + 1;
  }
  return { invalidAt: -1, validEnd: i };
}

function isCsvError(error: unknown): error is CsvError {
  const code = error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('CSV_') || code === 'INVALID_OPENING_QUOTE');
}

function lineOf(error: CsvError): number {
  return typeof error.lines === 'number' ? error.lines : 0;
}

function describeCsvError(error: CsvError): string {
  const line = lineOf(error);
  switch (error.code) {
    case 'CSV_MAX_RECORD_SIZE':
      return `the row at line ${line} is longer than ${MAX_RECORD_BYTES / 1024} KB; a quote (") is probably opened and never closed`;
    case 'CSV_QUOTE_NOT_CLOSED':
      return `a quoted cell is never closed (the file ends inside quotes, from line ${line} or earlier); close the quote or remove it`;
    default:
      return `at line ${line}: ${error.message}`;
  }
}
