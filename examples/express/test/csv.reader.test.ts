import { describe, expect, it } from 'vitest';
import { ValidationError } from '@disparo/core';
import { readCsvRecipients, UnsupportedCharsetError, type CsvRecipient } from '../src/csv.js';

/** Feed the bytes as the socket would, in chunks of `size` bytes (1: every multi-byte sequence is cut). */
async function* chunks(bytes: Buffer, size: number) {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function read(bytes: Buffer, options: { chunk?: number; charset?: string } = {}) {
  const csv = readCsvRecipients(chunks(bytes, options.chunk ?? 65_536), { charset: options.charset });
  const rows: CsvRecipient[] = [];
  for await (const row of csv.recipients) rows.push(row);
  return { rows, report: csv.report };
}

async function refusal(bytes: Buffer, options: { chunk?: number; charset?: string } = {}): Promise<ValidationError> {
  const error = await read(bytes, options).then(
    () => null,
    (e: unknown) => e,
  );
  expect(ValidationError.isInstance(error), `expected a ValidationError, got ${String(error)}`).toBe(true);
  return error as ValidationError;
}

const cp1252 = (text: string) => {
  const out = Buffer.alloc(text.length);
  const special: Record<string, number> = { '€': 0x80, '“': 0x93, '”': 0x94 };
  for (let i = 0; i < text.length; i++) out[i] = special[text[i]!] ?? text.charCodeAt(i);
  return out;
};

describe('CSV reader: encodings', () => {
  it.each([1, 7, 65_536])('reads Windows-1252 (Excel "CSV" in Brazil) in chunks of %i bytes: accents and € survive', async (chunk) => {
    const { rows, report } = await read(cp1252('nome;telefone;nota\nJoão;11987650001;Preço “€ 5”\nConceição;11987650002;ok\n'), { chunk });
    expect(report.encoding).toBe('windows-1252');
    expect(report.delimiter).toBe(';');
    expect(rows).toEqual([
      { phone: '11987650001', vars: { nome: 'João', nota: 'Preço “€ 5”' } },
      { phone: '11987650002', vars: { nome: 'Conceição', nota: 'ok' } },
    ]);
  });

  it.each([1, 2, 65_536])('reads UTF-8 with a BOM in chunks of %i bytes: the BOM does not stick to the first header', async (chunk) => {
    const { rows, report } = await read(Buffer.from('\uFEFFtelefone,nome\n11987650003,Conceição 🎉\n'), { chunk });
    expect(report.encoding).toBe('utf-8');
    expect(report.phoneColumn).toBe('telefone');
    expect(rows).toEqual([{ phone: '11987650003', vars: { nome: 'Conceição 🎉' } }]);
  });

  it('decides at the first non-ASCII byte, however far into the file it is', async () => {
    const ascii = Array.from({ length: 3_000 }, (_, i) => `1198${String(7_000_000 + i).padStart(7, '0')};Ana`).join('\n');
    const utf8 = await read(Buffer.from(`telefone;nome\n${ascii}\n11987659999;João\n`), { chunk: 4_099 });
    expect(utf8.report.encoding).toBe('utf-8');
    expect(utf8.rows.at(-1)).toEqual({ phone: '11987659999', vars: { nome: 'João' } });
    const latin = await read(cp1252(`telefone;nome\n${ascii}\n11987659999;João\n`), { chunk: 4_099 });
    expect(latin.report.encoding).toBe('windows-1252');
    expect(latin.rows.at(-1)).toEqual({ phone: '11987659999', vars: { nome: 'João' } });
    expect(latin.rows).toHaveLength(3_001);
  });

  it('honours a declared charset: iso-8859-1 and latin1 read as Windows-1252, utf-8 refuses bytes that are not UTF-8 and names the line', async () => {
    for (const charset of ['iso-8859-1', 'latin1', 'windows-1252']) {
      const { rows, report } = await read(cp1252('telefone;nome\n11987650004;João\n'), { charset });
      expect(report.encoding).toBe('windows-1252');
      expect(rows[0]!.vars.nome).toBe('João');
    }
    const error = await refusal(cp1252('telefone;nome\n11987650004;Ana\n11987650005;João\n'), { charset: 'utf-8' });
    expect(error.message).toContain('line 3');
    expect(error.message).toContain('charset=windows-1252');
    expect(() => readCsvRecipients(chunks(Buffer.from('telefone\n1\n'), 10), { charset: 'shift_jis' })).toThrow(UnsupportedCharsetError);
    expect(() => readCsvRecipients(chunks(Buffer.from('telefone\n1\n'), 10), { charset: 'no-such-charset' })).toThrow(UnsupportedCharsetError);
  });

  it('a file that starts as UTF-8 and then has a Windows-1252 byte is refused at that line, not stored with "\\uFFFD"', async () => {
    const bytes = Buffer.concat([Buffer.from('telefone;nome\n11987650006;José\n'), cp1252('11987650007;João\n')]);
    const error = await refusal(bytes, { chunk: 5 });
    expect(error.message).toContain('line 3');
    expect(error.issues[0]!.path).toBe('csv.line.3');
  });

  it('reads UTF-16 with a BOM (Excel "Unicode text", tab-separated)', async () => {
    const body = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('telefone\tnome\r\n11987650008\tJoão\r\n', 'utf16le')]);
    const { rows, report } = await read(body, { chunk: 3 });
    expect(report).toMatchObject({ encoding: 'utf-16le', delimiter: '\t' });
    expect(rows).toEqual([{ phone: '11987650008', vars: { nome: 'João' } }]);
  });
});

describe('CSV reader: header and rows', () => {
  it('keeps what worked: quoted delimiters and line breaks, "" escapes, a stray quote inside a cell, CRLF, blank rows, "," by default', async () => {
    const { rows, report } = await read(Buffer.from('nome,phone,obs\r\n"Silva, Carla",11987650009,"linha 1\nlinha 2"\r\n,,\r\n\r\nAna "Bia",11987650010,"diz ""oi"""\r\n'));
    expect(report.delimiter).toBe(',');
    expect(report.rows).toBe(2);
    expect(rows).toEqual([
      { phone: '11987650009', vars: { nome: 'Silva, Carla', obs: 'linha 1\nlinha 2' } },
      { phone: '11987650010', vars: { nome: 'Ana "Bia"', obs: 'diz "oi"' } },
    ]);
  });

  it('a column named after an Object.prototype property is an own variable like any other', async () => {
    const names = Object.getOwnPropertyNames(Object.prototype);
    const { rows } = await read(Buffer.from(`telefone;${names.join(';')}\n11987650011;${names.map((n) => `v-${n}`).join(';')}\n`));
    const vars = rows[0]!.vars;
    expect(Object.getPrototypeOf(vars)).toBe(Object.prototype);
    for (const name of names) expect(Object.getOwnPropertyDescriptor(vars, name)?.value, name).toBe(`v-${name}`);
    expect(Object.keys(vars)).toHaveLength(names.length);
  });

  it('refuses a header with two phone columns, a column named twice, or no phone column, naming the columns', async () => {
    const twoPhones = await refusal(Buffer.from('telefone;nome;celular\n11987650012;Ana;11987650013\n'));
    expect(twoPhones.message).toContain('"telefone" (column 1)');
    expect(twoPhones.message).toContain('"celular" (column 3)');
    expect(twoPhones.issues[0]!.path).toBe('csv.header');
    const twice = await refusal(Buffer.from('telefone;nome;Telefone\n11987650012;Ana;11987650013\n'));
    expect(twice.message).toContain('"Telefone" twice (columns 1 and 3)');
    const sameVar = await refusal(Buffer.from('telefone;nome;nome\n11987650012;Ana;Bia\n'));
    expect(sameVar.message).toContain('"nome" twice');
    const none = await refusal(Buffer.from('name,city\nAna,SP\n'));
    expect(none.message).toContain('no phone column');
    expect((await refusal(Buffer.from(''))).message).toContain('empty');
  });

  it('counts rows with an empty phone and says on which lines; they are still handed to the import', async () => {
    const { rows, report } = await read(Buffer.from('nome;telefone\nAna;11987650014\nBia;\n;\nCris;   \nDu\n'));
    expect(report).toMatchObject({ rows: 4, emptyPhone: 3, emptyPhoneLines: [3, 5, 6] });
    expect(rows.map((r) => r.phone)).toEqual(['11987650014', '', '', '']);
  });

  it('removes NUL characters from cells and the header, counting them and their lines', async () => {
    const { rows, report } = await read(Buffer.from('no\0me;telefone;cidade\nAn\0a;1198765\u00000015;S\0P\nBia;11987650016;RJ\n'));
    expect(rows).toEqual([
      { phone: '11987650015', vars: { nome: 'Ana', cidade: 'SP' } },
      { phone: '11987650016', vars: { nome: 'Bia', cidade: 'RJ' } },
    ]);
    expect(report).toMatchObject({ nulRemoved: 4, nulLines: [1, 2] });
  });

  it('a quote never closed is refused at its line once the row passes 1 MB, instead of growing in memory', async () => {
    const body = Buffer.concat([Buffer.from('telefone;nome\n11987650017;"Ana\n'), Buffer.alloc(3 << 20, 'x\n')]);
    const error = await refusal(body);
    expect(error.message).toMatch(/line \d+ is longer than 1024 KB/);
  });
});
