/**
 * A small RFC 4180 CSV reader for recipient uploads: a header row naming a `phone` column (or
 * `telefone`, `whatsapp`, `numero`), every other column becomes a template variable.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  const delimiter = sniffDelimiter(text);
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === delimiter) {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f.trim() !== '')) rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  row.push(field);
  if (row.some((f) => f.trim() !== '')) rows.push(row);
  return rows;
}

/** Spreadsheets exported in Brazil often use ';'. */
function sniffDelimiter(text: string): ',' | ';' {
  const firstLine = text.slice(0, text.indexOf('\n') >>> 0);
  return (firstLine.match(/;/g)?.length ?? 0) > (firstLine.match(/,/g)?.length ?? 0) ? ';' : ',';
}

const PHONE_HEADERS = ['phone', 'telefone', 'whatsapp', 'numero', 'número', 'celular'];

export function csvRecipients(text: string): { recipients: Array<{ phone: string; vars: Record<string, string> }>; error?: string } {
  const [header, ...rows] = parseCsv(text.replace(/^\uFEFF/, ''));
  if (!header) return { recipients: [], error: 'the CSV is empty' };
  const names = header.map((h) => h.trim());
  const phoneIndex = names.findIndex((h) => PHONE_HEADERS.includes(h.toLowerCase()));
  if (phoneIndex < 0) return { recipients: [], error: `no phone column: name one of ${PHONE_HEADERS.join(', ')} in the header row` };
  return {
    recipients: rows.map((cells) => {
      const vars: Record<string, string> = {};
      names.forEach((name, i) => {
        if (i !== phoneIndex && name && cells[i] !== undefined) vars[name] = cells[i]!.trim();
      });
      return { phone: (cells[phoneIndex] ?? '').trim(), vars };
    }),
  };
}
