/**
 * Alert settings: each rule's thresholds, window, cooldown and recipients, the digests, and
 * the delivery retries. Defaults apply first, then the ALERT_RULES_FILE (YAML or JSON), then
 * the edits made in the dashboard. A file looks like this:
 *
 * ```yaml
 * rules:
 *   service-pass-rate:
 *     threshold: 98
 *     recipients: [mail-ops@example.com]
 *     services:
 *       password-resets: { threshold: 95 }
 *   unattributed-spike:
 *     enabled: false
 * digests:
 *   - to: security@example.com
 *     every: weekly
 * ```
 */
import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

import type { RecommendationKind } from '../analyze/recommendations.js';

const RECOMMENDATION_KINDS = [
  'step-up-policy',
  'set-subdomain-policy',
  'strict-alignment',
  'fix-service',
  'add-to-catalog',
  'spoofing',
  'wait-for-data',
] as const satisfies readonly RecommendationKind[];

const email = z.string().regex(/^[^@\s]+@[^@\s]+$/, { message: 'expected an e-mail address' });
const recipients = z.array(email).default([]);
const positive = z.number().positive();
const percent = z.number().min(0).max(100);
const severity = z.enum(['critical', 'warning', 'info']);

/** Settings every rule has. An empty `recipients` list sends to ALERT_TO. */
const common = {
  enabled: z.boolean().default(true),
  recipients,
  /** Hours before an alert that is still open and no worse is sent again. */
  cooldownHours: positive,
};

const sourceRule = (cooldownHours: number) =>
  z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(cooldownHours),
    /** Report days back from today over which a source's mail is counted. */
    windowDays: z.number().int().positive().default(7),
    /** Messages over the window below which a source is left out as noise. */
    minMessages: z.number().int().min(1).default(10),
  });

export const RULE_SCHEMAS = {
  'new-failing-source': sourceRule(168),
  'new-passing-source': sourceRule(168),
  'service-pass-rate': z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(24),
    windowDays: z.number().int().positive().default(3),
    baselineDays: z.number().int().positive().default(28),
    /** Percent of messages passing DMARC below which a service alerts. */
    threshold: percent.default(98),
    /** Points below the service's own baseline pass rate that alert even above threshold. */
    baselineDropPoints: percent.default(10),
    minMessages: z.number().int().min(1).default(50),
    /** Further points of drop after an alert that make it worse and send it again. */
    worseByPoints: positive.default(5),
    /** Also send to the `contact` the service catalog names for the service. */
    notifyServiceOwner: z.boolean().default(true),
    services: z.record(z.string(), z.strictObject({ threshold: percent })).default({}),
  }),
  'unattributed-spike': z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(24),
    windowDays: z.number().int().positive().default(1),
    baselineDays: z.number().int().positive().default(14),
    /** How many times the baseline daily volume counts as a spike. */
    factor: z.number().min(1).default(3),
    /** Failing messages per day in the window below which nothing alerts. */
    minMessages: z.number().int().min(1).default(100),
    /** Growth over the volume last sent that makes the alert worse. */
    worseFactor: z.number().min(1).default(2),
  }),
  'policy-step': z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(336),
    /** Days of reports the recommendations are computed from. */
    observeDays: z.number().int().positive().default(30),
  }),
  'recommendation-change': z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(336),
    observeDays: z.number().int().positive().default(30),
    minSeverity: severity.default('warning'),
    // The other kinds have a rule of their own: policy-step, service-pass-rate and the two
    // source rules, so that one problem sends one message.
    kinds: z
      .array(z.enum(RECOMMENDATION_KINDS))
      .default(['set-subdomain-policy', 'strict-alignment']),
  }),
  'reporter-silent': z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(72),
    /** A reporter alerts when its latest report day is more than this many days before today. */
    silentDays: z.number().int().positive().default(2),
    baselineDays: z.number().int().positive().default(14),
    /** Days of the baseline a reporter must have reported on to count as reporting daily. */
    minReportDays: z.number().int().positive().default(10),
  }),
  'nothing-ingested': z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(24),
    hours: positive.default(24),
  }),
  'quarantined-inputs': z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(168),
    minInputs: z.number().int().min(1).default(1),
  }),
  'imap-connection': z.strictObject({
    ...common,
    cooldownHours: common.cooldownHours.default(24),
    /** Minutes of failed connection attempts before it alerts. */
    minutes: positive.default(30),
  }),
} as const;

export type RuleId = keyof typeof RULE_SCHEMAS;
export const RULE_IDS = Object.keys(RULE_SCHEMAS) as RuleId[];
export type RuleSettings<R extends RuleId> = z.output<(typeof RULE_SCHEMAS)[R]>;
export type AnyRuleSettings = RuleSettings<RuleId>;

const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

const digestSchema = z.strictObject({
  to: z.union([email, z.array(email).min(1)]),
  every: z.enum(['daily', 'weekly']),
  /** UTC hour at which the digest goes out. */
  hour: z.number().int().min(0).max(23).default(7),
  /** Day of the week of a weekly digest. */
  weekday: z.enum(WEEKDAYS as [string, ...string[]]).default('monday'),
});

const fileSchema = z.strictObject({
  rules: z.partialRecord(z.enum(RULE_IDS as [RuleId, ...RuleId[]]), z.unknown()).default({}),
  digests: z.array(digestSchema).optional(),
  /** Minutes between scheduled evaluations; an ingest also starts one. */
  scheduleMinutes: positive.default(15),
  /** Minutes to wait before each retry of a failed delivery; one attempt more than entries. */
  retryMinutes: z.array(positive).default([1, 5, 30, 120]),
});

/** One digest subscription. */
export interface DigestSubscription {
  recipient: string;
  every: 'daily' | 'weekly';
  hour: number;
  /** 0 is Sunday, as `Date.getUTCDay` counts. */
  weekday: number;
}

/** Everything the alerting reads from the settings file. */
export interface AlertSettingsFile {
  rules: Partial<Record<RuleId, unknown>>;
  digests: DigestSubscription[] | null;
  scheduleMinutes: number;
  retryMinutes: number[];
}

/** A settings file or dashboard edit that cannot be used; names the file and the setting. */
export class AlertSettingsError extends Error {
  readonly code = 'invalid-alert-settings';

  constructor(message: string) {
    super(message);
    this.name = 'AlertSettingsError';
  }
}

function describeIssue(issue: z.core.$ZodIssue, prefix: string[]): string {
  const path = [...prefix, ...issue.path.map(String)].join('.');
  return `${path || '(top level)'}: ${issue.message}`;
}

/**
 * Parses the text of an ALERT_RULES_FILE; YAML, of which JSON is a subset.
 * @throws AlertSettingsError naming the file and the first wrong setting
 */
export function parseAlertSettings(text: string, source = 'ALERT_RULES_FILE'): AlertSettingsFile {
  let document: unknown;
  try {
    document = parseYaml(text) ?? {};
  } catch (error) {
    throw new AlertSettingsError(`Invalid ${source}: ${(error as Error).message}`);
  }
  const rules = (document as { rules?: unknown })?.rules;
  if (rules && typeof rules === 'object' && !Array.isArray(rules)) {
    const unknown = Object.keys(rules).find((rule) => !(RULE_IDS as string[]).includes(rule));
    if (unknown !== undefined) {
      throw new AlertSettingsError(
        `Invalid ${source}: rules.${unknown}: unknown rule; expected one of ${RULE_IDS.join(', ')}`,
      );
    }
  }
  const parsed = fileSchema.safeParse(document);
  if (!parsed.success) {
    throw new AlertSettingsError(`Invalid ${source}: ${describeIssue(parsed.error.issues[0], [])}`);
  }
  // Rule settings are checked now, so that a typo stops start-up instead of the first run.
  for (const [rule, settings] of Object.entries(parsed.data.rules)) {
    resolveRuleSettings(rule as RuleId, settings, {}, source);
  }
  const digests =
    parsed.data.digests?.flatMap((digest) =>
      (Array.isArray(digest.to) ? digest.to : [digest.to]).map((recipient) => ({
        recipient: recipient.toLowerCase(),
        every: digest.every,
        hour: digest.hour,
        weekday: WEEKDAYS.indexOf(digest.weekday),
      })),
    ) ?? null;
  return {
    rules: parsed.data.rules,
    digests,
    scheduleMinutes: parsed.data.scheduleMinutes,
    retryMinutes: parsed.data.retryMinutes,
  };
}

/**
 * Reads the settings file, or returns the defaults when there is none.
 * @throws AlertSettingsError when the file cannot be read or is invalid
 */
export function loadAlertSettings(file: string | undefined): AlertSettingsFile {
  if (!file) return parseAlertSettings('{}');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new AlertSettingsError(
      `Cannot read ALERT_RULES_FILE ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return parseAlertSettings(text, `ALERT_RULES_FILE ${file}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merges `patch` into `base`; objects merge key by key, anything else replaces. */
export function mergeSettings(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch === undefined ? base : patch;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) merged[key] = mergeSettings(base[key], value);
  return merged;
}

/**
 * The effective settings of one rule: defaults, then the file, then the dashboard edits.
 * @throws AlertSettingsError naming the rule and the first wrong setting
 */
export function resolveRuleSettings<R extends RuleId>(
  rule: R,
  fromFile: unknown,
  overrides: unknown,
  source = 'alert settings',
): RuleSettings<R> {
  const merged = mergeSettings(mergeSettings({}, fromFile ?? {}), overrides ?? {});
  const parsed = RULE_SCHEMAS[rule].safeParse(merged);
  if (!parsed.success) {
    throw new AlertSettingsError(
      `Invalid ${source}: ${describeIssue(parsed.error.issues[0], ['rules', rule])}`,
    );
  }
  return parsed.data as RuleSettings<R>;
}

/** The digests of the file, or one weekly digest per ALERT_TO address when it names none. */
export function digestSubscriptions(
  file: AlertSettingsFile,
  alertTo: readonly string[],
): DigestSubscription[] {
  if (file.digests !== null) return file.digests;
  return alertTo.map((recipient) => ({
    recipient: recipient.toLowerCase(),
    every: 'weekly',
    hour: 7,
    weekday: 1,
  }));
}
