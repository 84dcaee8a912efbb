// Cells that a spreadsheet would run as a formula (OWASP "CSV injection"): prefix them with a
// single quote so that they show as text. Report fields come from strangers.
const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV cell per RFC 4180, with spreadsheet formulas neutralised. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = value instanceof Date ? value.toISOString() : String(value);
  if (typeof value === 'string' && FORMULA_START.test(text)) text = `'${text}`;
  if (/[",\r\n]/.test(text)) return `"${text.replace(/"/g, '""')}"`;
  return text;
}

export function csvLine(values: unknown[]): string {
  return `${values.map(csvCell).join(',')}\r\n`;
}
