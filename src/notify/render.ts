/**
 * Alert e-mails as plain text and HTML. Most values come from reports, which anyone can send,
 * so every value goes through `escapeHtml` in the HTML part.
 */
import {
  alertSubject,
  type DashboardLink,
  type Finding,
  type FindingTable,
  type NotificationKind,
} from './alert.js';

/** A rendered e-mail. */
export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]);
}

// The dashboard's filter parameters in the order its filter bar writes them; others follow in
// name order. A fixed order keeps the link the same after a round trip through jsonb.
const PARAM_ORDER = ['range', 'from', 'to', 'domain', 'reporter', 'result', 'disposition'];

function paramRank(name: string): number {
  const index = PARAM_ORDER.indexOf(name);
  return index === -1 ? PARAM_ORDER.length : index;
}

/** Builds the absolute dashboard URL of a link under PUBLIC_URL. */
export function dashboardUrl(publicUrl: string, link: DashboardLink): string {
  const url = new URL(publicUrl);
  // A PUBLIC_URL with a path prefix keeps it: /dmarc + /records = /dmarc/records.
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${link.path}`;
  url.search = '';
  url.hash = '';
  const params = Object.entries(link.params).sort(
    ([a], [b]) => paramRank(a) - paramRank(b) || a.localeCompare(b),
  );
  for (const [name, value] of params) url.searchParams.set(name, value);
  return url.toString();
}

// Subjects are single header lines: report values must not add line breaks or control bytes.
function subjectLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 250);
}

export function textTable(table: FindingTable): string {
  const widths = table.columns.map((column, index) =>
    Math.min(40, Math.max(column.length, ...table.rows.map((row) => (row[index] ?? '').length))),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, index) => (index === cells.length - 1 ? cell : cell.padEnd(widths[index])))
      .join('  ')
      .trimEnd();
  return [table.caption, line(table.columns), ...table.rows.map(line)].join('\n');
}

const CELL = 'style="padding:4px 8px;border-bottom:1px solid #ddd;text-align:left"';

export function htmlTable(table: FindingTable): string {
  const head = table.columns.map((column) => `<th ${CELL}>${escapeHtml(column)}</th>`).join('');
  const body = table.rows
    .map((row) => `<tr>${row.map((cell) => `<td ${CELL}>${escapeHtml(cell)}</td>`).join('')}</tr>`)
    .join('\n');
  return (
    `<table style="border-collapse:collapse;font-size:13px">` +
    `<caption style="text-align:left;font-weight:bold;padding:8px 0">${escapeHtml(table.caption)}</caption>` +
    `<thead><tr>${head}</tr></thead>\n<tbody>${body}</tbody></table>`
  );
}

/** Wraps the body of an HTML e-mail in a page with a heading and a footer. */
export function htmlPage(title: string, body: string, footer: string): string {
  return [
    '<!DOCTYPE html>',
    '<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
    `<title>${escapeHtml(title)}</title></head>`,
    '<body style="font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#222;max-width:760px">',
    `<h2 style="font-size:18px">${escapeHtml(title)}</h2>`,
    body,
    `<p style="color:#777;font-size:12px;margin-top:24px">${escapeHtml(footer)}</p>`,
    '</body></html>',
  ].join('\n');
}

function factsText(facts: [string, string][]): string {
  return facts.map(([label, value]) => `  ${label}: ${value}`).join('\n');
}

function factsHtml(facts: [string, string][]): string {
  const rows = facts
    .map(
      ([label, value]) =>
        `<tr><th ${CELL}>${escapeHtml(label)}</th><td ${CELL}>${escapeHtml(value)}</td></tr>`,
    )
    .join('\n');
  return `<table style="border-collapse:collapse;font-size:13px">${rows}</table>`;
}

function buttonHtml(url: string, label: string): string {
  return (
    `<p><a href="${escapeHtml(url)}" style="display:inline-block;padding:8px 14px;` +
    `background:#1f5fbf;color:#fff;text-decoration:none;border-radius:4px">${escapeHtml(label)}</a></p>`
  );
}

/** The finding and context that one alert message is rendered from. */
export interface AlertMessageInput {
  kind: NotificationKind;
  finding: Finding;
  /** Members not in an earlier message, shown as new. */
  newMembers: string[];
  /** For `resolved`: the present state, when the rule described it. */
  clearedNote: string | null;
  cooldownHours: number;
  /** The rule's subject prefix for a changed finding, when it is not "Worse". */
  changeLabel?: string;
  publicUrl: string;
  at: Date;
}

/** Renders the message about one alert. */
export function renderAlertMessage(input: AlertMessageInput): RenderedMessage {
  const { finding, kind } = input;
  const url = dashboardUrl(input.publicUrl, finding.link);
  const footer =
    `dmarc-lens alert ${finding.key}, rule ${finding.rule}, ${input.at.toISOString()}. ` +
    `While it stays open it is sent again only when it gets worse, or after ` +
    `${input.cooldownHours} hours. Resolution is announced once.`;

  if (kind === 'resolved') {
    const title = input.clearedNote ?? finding.title;
    const line = input.clearedNote
      ? `Resolved: ${input.clearedNote}.`
      : 'Resolved: the rule no longer finds this problem.';
    const text = [
      line,
      '',
      `The alert was: ${finding.title}`,
      '',
      `Open in the dashboard: ${url}`,
      '',
      '-- ',
      footer,
    ].join('\n');
    const html = htmlPage(
      `Resolved: ${title}`,
      `<p>${escapeHtml(line)}</p>\n<p>The alert was: ${escapeHtml(finding.title)}</p>\n${buttonHtml(url, 'Open in the dashboard')}`,
      footer,
    );
    return { subject: subjectLine(alertSubject(kind, title)), text, html };
  }

  const newLine =
    kind === 'worse' && input.newMembers.length > 0 && !input.changeLabel
      ? `New since the last message: ${input.newMembers.join(', ')}`
      : null;
  const textParts = [finding.title, '', finding.summary];
  if (newLine) textParts.push('', newLine);
  textParts.push('', 'Numbers', factsText(finding.facts));
  if (finding.table && finding.table.rows.length > 0) textParts.push('', textTable(finding.table));
  textParts.push(
    '',
    `Likely cause: ${finding.cause}`,
    '',
    `Fix: ${finding.fix}`,
    '',
    `Open in the dashboard: ${url}`,
    '',
    '-- ',
    footer,
  );

  const htmlParts = [`<p>${escapeHtml(finding.summary)}</p>`];
  if (newLine) htmlParts.push(`<p><strong>${escapeHtml(newLine)}</strong></p>`);
  htmlParts.push(factsHtml(finding.facts));
  if (finding.table && finding.table.rows.length > 0) htmlParts.push(htmlTable(finding.table));
  htmlParts.push(
    `<p><strong>Likely cause:</strong> ${escapeHtml(finding.cause)}</p>`,
    `<p><strong>Fix:</strong> ${escapeHtml(finding.fix)}</p>`,
    buttonHtml(url, 'Open in the dashboard'),
  );

  return {
    subject: subjectLine(alertSubject(kind, finding.title, input.changeLabel)),
    text: textParts.join('\n'),
    html: htmlPage(finding.title, htmlParts.join('\n'), footer),
  };
}
