/**
 * The inputs of every rule: the clock, the database, and the shared lookups computed once per
 * evaluation. Windows count report days (the UTC day of a report's date_begin) and end today,
 * so that reports that cover today count as soon as they arrive.
 */
import type pg from 'pg';

import type { Recommendation } from '../../analyze/recommendations.js';
import type { AnalysisService } from '../../analyze/service.js';
import type { PublishedPolicy } from '../../store/analysis.js';
import type { Finding, RuleResult } from '../alert.js';
import type { RuleId, RuleSettings } from '../settings.js';

const DAY_MS = 86_400_000;

export interface RuleContext {
  now: Date;
  pool: pg.Pool;
  analysis: AnalysisService;
  /** Service contacts from the catalog, by lower-case service name. */
  contacts: Map<string, string>;
  /** Recommendations over the last `days` report days, computed once per evaluation. */
  recommendations(days: number): Promise<Recommendation[]>;
  /** The latest published policy per domain. */
  policies(): Promise<Map<string, PublishedPolicy>>;
}

/** One alert rule: what it watches and how it decides. */
export interface AlertRuleDefinition<R extends RuleId = RuleId> {
  id: R;
  /** A short name for the dashboard, e.g. "Service pass rate". */
  name: string;
  /** The condition that fires the rule, in one sentence. */
  description: string;
  /** The subject prefix of a repeat sent because the finding changed; "Worse" by default. */
  changeLabel?: string;
  evaluate(context: RuleContext, settings: RuleSettings<R>): Promise<RuleResult>;
  /** True when `finding` is worse than the level and members sent last. */
  isWorse(
    sent: { level: number | null; members: readonly string[] },
    finding: Finding,
    settings: RuleSettings<R>,
  ): boolean;
}

/** Formats the UTC day of a moment as YYYY-MM-DD. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** Adds `days` days to `day`; negative values go back. */
export function addDays(day: string, days: number): string {
  return utcDay(new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS));
}

/** Computes the window of report days from `days` days before today through today. */
export function recentWindow(now: Date, days: number): { from: string; to: string } {
  const today = utcDay(now);
  return { from: addDays(today, -days), to: today };
}

/** Whole days between a moment and now, rounded down. */
export function daysSince(at: Date, now: Date): number {
  return Math.floor((now.getTime() - at.getTime()) / DAY_MS);
}

/** True when `finding` lists a member that was not sent before. */
export function hasNewMembers(sent: readonly string[], finding: Finding): boolean {
  const known = new Set(sent);
  return finding.members.some((member) => !known.has(member));
}

/** Turns a list into "a, b and 3 more". */
export function listSome(items: readonly string[], max = 3): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}
