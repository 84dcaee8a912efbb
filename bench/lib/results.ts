/** A target from the design goals, checked against one figure. */
export interface Target {
  comparison: 'at-least' | 'below';
  value: number;
}

/** One measured figure of a run. */
export interface Figure {
  section: string;
  name: string;
  value: number;
  unit: string;
  target?: Target;
  /** Whether the figure meets its target; absent when it has none. */
  met?: boolean;
  /** A description of the measurement, where the name alone leaves it open. */
  note?: string;
}

export interface SkippedSection {
  section: string;
  reason: string;
}

/** The figures of one run, printed as a table and written as JSON. */
export class Results {
  readonly figures: Figure[] = [];
  readonly skipped: SkippedSection[] = [];

  add(figure: Omit<Figure, 'met'>): void {
    const met = figure.target ? meets(figure.value, figure.target) : undefined;
    this.figures.push(met === undefined ? figure : { ...figure, met });
  }

  skip(section: string, reason: string): void {
    this.skipped.push({ section, reason });
  }
}

function meets(value: number, target: Target): boolean {
  return target.comparison === 'at-least' ? value >= target.value : value < target.value;
}

/** Formats a number with about three significant digits and thousands separators. */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  let digits = 3;
  if (magnitude >= 100) digits = 0;
  else if (magnitude >= 10) digits = 1;
  else if (magnitude >= 1) digits = 2;
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function metText(figure: Figure, yes: string, no: string): string {
  if (figure.met === undefined) return '';
  return figure.met ? yes : no;
}

function formatTarget(target: Target | undefined): string {
  if (!target) return '';
  return `${target.comparison === 'at-least' ? '≥' : '<'} ${formatValue(target.value)}`;
}

/** Renders the figures as a fixed-width text table, one row per figure. */
export function formatTable(results: Results): string {
  const header = ['section', 'figure', 'value', 'unit', 'target', 'met'];
  const rows = results.figures.map((figure) => [
    figure.section,
    figure.name,
    formatValue(figure.value),
    figure.unit,
    formatTarget(figure.target),
    metText(figure, 'yes', 'NO'),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length)),
  );
  // Numbers align right, text left.
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === 2 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]),
      )
      .join('  ')
      .trimEnd();

  const lines = [line(header), widths.map((width) => '-'.repeat(width)).join('  ')];
  let section = '';
  for (const [index, row] of rows.entries()) {
    if (row[0] !== section && index > 0) lines.push('');
    section = row[0];
    lines.push(line(row));
  }
  for (const skipped of results.skipped) {
    lines.push('', `${skipped.section}: skipped, ${skipped.reason}`);
  }
  return lines.join('\n');
}

/** Renders the figures as a Markdown table, for docs/benchmarks.md. */
export function formatMarkdown(results: Results): string {
  const lines = [
    '| section | figure | value | unit | target | met |',
    '| --- | --- | ---: | --- | --- | --- |',
  ];
  for (const figure of results.figures) {
    const met = metText(figure, 'yes', '**no**');
    lines.push(
      `| ${figure.section} | ${figure.name} | ${formatValue(figure.value)} | ${figure.unit} | ${formatTarget(figure.target)} | ${met} |`,
    );
  }
  return lines.join('\n');
}
