/**
 * Findings of the alert rules, the parts of the alert e-mails. Rules fill a `Finding` with plain
 * text; rendering escapes it for HTML, since much of it comes from reports.
 */
import type { RuleId } from './settings.js';

export type AlertSeverity = 'critical' | 'warning' | 'info';

/** A dashboard view and its query parameters, turned into a link under PUBLIC_URL. */
export interface DashboardLink {
  path: string;
  params: Record<string, string>;
}

/** A small table in an alert, such as the sources behind it. */
export interface FindingTable {
  caption: string;
  columns: string[];
  rows: string[][];
}

/** One problem a rule found in the stored data. */
export interface Finding {
  /** Stable across evaluations: the rule and what it is about, e.g. `service-pass-rate:example.com:billing`. */
  key: string;
  rule: RuleId;
  domain: string | null;
  service: string | null;
  severity: AlertSeverity;
  /** The event and the domain or service it concerns; the subject without its prefix. */
  title: string;
  summary: string;
  /** The numbers behind it, as label and formatted value. */
  facts: [string, string][];
  table?: FindingTable;
  cause: string;
  fix: string;
  link: DashboardLink;
  /** Severity in the rule's unit, compared with the value last sent. */
  level: number;
  /** Items it lists (sources, inputs); one not yet sent makes the finding worse. */
  members: string[];
  /** Recipients besides the rule's, such as the service owner from the catalog. */
  extraRecipients: string[];
}

/** The outcome of one rule over the stored data. */
export interface RuleResult {
  findings: Finding[];
  /**
   * The present state of keys that are fine now, when the rule computed it, e.g. "pass rate
   * back to 99%"; used in the message that announces the resolution.
   */
  cleared?: Map<string, string>;
}

/** The reason a message about an alert is sent. */
export type NotificationKind = 'opened' | 'worse' | 'reminder' | 'resolved';

export const SUBJECT_PREFIX = '[dmarc-lens]';

const KIND_PREFIX: Record<NotificationKind, string> = {
  opened: '',
  worse: 'Worse: ',
  reminder: 'Still open: ',
  resolved: 'Resolved: ',
};

/**
 * Builds the subject line of an alert message; `changeLabel` replaces "Worse" for rules where a new
 * finding is a change rather than a deterioration.
 */
export function alertSubject(kind: NotificationKind, title: string, changeLabel?: string): string {
  const prefix = kind === 'worse' && changeLabel ? `${changeLabel}: ` : KIND_PREFIX[kind];
  return `${SUBJECT_PREFIX} ${prefix}${title}`;
}

/** Formats a share as a percentage with at most one decimal: 41, 97.5. */
export function formatPercent(part: number, whole: number): string {
  if (whole === 0) return '0%';
  return `${Math.round((part / whole) * 1000) / 10}%`;
}

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
