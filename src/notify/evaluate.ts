/**
 * One evaluation of the alert rules: run every enabled rule over the stored data, compare the
 * findings with the open alerts, and decide what to send. An alert is sent when it opens, again
 * when it gets worse or its cooldown has passed, and once when it is resolved.
 */
import type pg from 'pg';
import type { Logger } from 'pino';

import type { Recommendation } from '../analyze/recommendations.js';
import { AnalysisService } from '../analyze/service.js';
import { findPublishedPolicies, type PublishedPolicy } from '../store/analysis.js';
import { findCatalog } from '../store/catalog.js';
import {
  findOpenAlerts,
  findRuleOverrides,
  insertAlert,
  insertDelivery,
  markAlertNotified,
  resolveAlert,
  saveRuleSettings,
  updateAlert,
  withEvaluationLock,
  type StoredAlert,
} from '../store/alerts.js';
import type { Finding, NotificationKind, RuleResult } from './alert.js';
import { renderAlertMessage, type RenderedMessage } from './render.js';
import { RULES } from './rules/index.js';
import { recentWindow, type RuleContext } from './rules/context.js';
import {
  AlertSettingsError,
  RULE_IDS,
  resolveRuleSettings,
  type AlertSettingsFile,
  type AnyRuleSettings,
  type RuleId,
} from './settings.js';

const HOUR_MS = 3_600_000;

/** The dependencies of alerting: database, clock, settings and addresses. */
export interface AlertEnvironment {
  pool: pg.Pool;
  log: Logger;
  /** PUBLIC_URL, the base of every dashboard link. */
  publicUrl: string;
  /** ALERT_TO: recipients of rules that name none. */
  alertTo: string[];
  settings: AlertSettingsFile;
  /** The clock; tests move it. */
  now: () => Date;
}

/** A message the evaluation decided to send, to one or more recipients. */
export interface PlannedNotification {
  key: string;
  rule: RuleId;
  kind: NotificationKind;
  severity: string;
  domain: string | null;
  service: string | null;
  recipients: string[];
  message: RenderedMessage;
  finding: Finding;
}

export interface EvaluationResult {
  evaluatedAt: Date;
  /** True when another instance was evaluating, so this one did nothing. */
  skipped: boolean;
  notifications: PlannedNotification[];
  /** Open alerts after the evaluation. */
  open: number;
  /** Rules that failed; their open alerts were left as they were. */
  errors: { rule: RuleId; message: string }[];
  /** Queued deliveries, one per notification and recipient; empty in a dry run. */
  deliveryIds: number[];
}

/** Resolves the effective settings of every rule: defaults, then the file, then the dashboard edits. */
export async function effectiveRuleSettings(
  env: AlertEnvironment,
  db: pg.Pool | pg.PoolClient = env.pool,
): Promise<Map<RuleId, AnyRuleSettings>> {
  const overrides = await findRuleOverrides(db);
  const settings = new Map<RuleId, AnyRuleSettings>();
  for (const rule of RULE_IDS) {
    const fromFile = env.settings.rules[rule];
    try {
      settings.set(rule, resolveRuleSettings(rule, fromFile, overrides.get(rule)));
    } catch (error) {
      if (!(error instanceof AlertSettingsError)) throw error;
      // A dashboard edit that a later file change made invalid must not stop every alert.
      env.log.error({ err: error, rule }, 'Ignoring the dashboard edits of an alert rule');
      settings.set(rule, resolveRuleSettings(rule, fromFile, {}));
    }
  }
  return settings;
}

/** Creates the analysis facade over the stored reports, for the rules and the digest. */
export function createAnalysis(env: AlertEnvironment): AnalysisService {
  // No SERVICES_FILE: serve loads the catalog file; alerting only reads the stored copy.
  return new AnalysisService({ pool: env.pool, log: env.log, config: { servicesFile: undefined } });
}

/** Recommendations over the last `days` report days up to `now`. */
export async function findRecommendations(
  analysis: AnalysisService,
  now: Date,
  days: number,
): Promise<Recommendation[]> {
  return (await analysis.recommendations(recentWindow(now, days))).rows;
}

async function findServiceContacts(pool: pg.Pool): Promise<Map<string, string>> {
  const { catalog } = await findCatalog(pool);
  const contacts = new Map<string, string>();
  for (const service of catalog.services) {
    if (service.contact) contacts.set(service.name.toLowerCase(), service.contact);
  }
  return contacts;
}

function createContext(
  env: AlertEnvironment,
  now: Date,
  contacts: Map<string, string>,
): RuleContext {
  const analysis = createAnalysis(env);
  const recommendations = new Map<number, Promise<Recommendation[]>>();
  let policies: Promise<Map<string, PublishedPolicy>> | null = null;
  return {
    now,
    pool: env.pool,
    analysis,
    contacts,
    recommendations(days) {
      if (!recommendations.has(days)) {
        recommendations.set(days, findRecommendations(analysis, now, days));
      }
      return recommendations.get(days)!;
    },
    policies() {
      policies ??= findPublishedPolicies(env.pool, null);
      return policies;
    },
  };
}

async function runRules(
  env: AlertEnvironment,
  settings: Map<RuleId, AnyRuleSettings>,
  now: Date,
): Promise<{ results: Map<RuleId, RuleResult>; errors: EvaluationResult['errors'] }> {
  const context = createContext(env, now, await findServiceContacts(env.pool));
  const results = new Map<RuleId, RuleResult>();
  const errors: EvaluationResult['errors'] = [];
  for (const rule of RULE_IDS) {
    const ruleSettings = settings.get(rule)!;
    if (!ruleSettings.enabled) continue;
    try {
      const definition = RULES[rule] as (typeof RULES)[RuleId];
      results.set(rule, await definition.evaluate(context, ruleSettings as never));
    } catch (error) {
      env.log.error({ err: error, rule }, 'Alert rule failed; its open alerts stay as they are');
      errors.push({ rule, message: (error as Error).message });
    }
  }
  return { results, errors };
}

/** One change to the stored alerts, and the message it sends, if any. */
interface PlanStep {
  alert: StoredAlert | null;
  finding: Finding;
  notify: NotificationKind | null;
  resolve: 'cleared' | 'rule-disabled' | null;
  newMembers: string[];
  clearedNote: string | null;
}

function storedFinding(alert: StoredAlert): Finding {
  return alert.details as unknown as Finding;
}

/** Compares the findings with the open alerts; pure, so that a dry run plans the same way. */
export function planChanges(
  open: StoredAlert[],
  results: Map<RuleId, RuleResult>,
  settings: Map<RuleId, AnyRuleSettings>,
  failedRules: Set<RuleId>,
  now: Date,
): PlanStep[] {
  const steps: PlanStep[] = [];
  const openByKey = new Map(open.map((alert) => [alert.key, alert]));
  const found = new Set<string>();

  for (const [rule, result] of results) {
    const ruleSettings = settings.get(rule)!;
    const definition = RULES[rule] as (typeof RULES)[RuleId];
    for (const finding of result.findings) {
      if (found.has(finding.key)) continue;
      found.add(finding.key);
      const alert = openByKey.get(finding.key) ?? null;
      const sent = alert?.notifiedMembers ?? [];
      const newMembers = finding.members.filter((member) => !sent.includes(member));
      let notify: NotificationKind | null = null;
      if (!alert || alert.lastNotifiedAt === null) {
        notify = 'opened';
      } else if (
        definition.isWorse(
          { level: alert.notifiedLevel, members: alert.notifiedMembers },
          finding,
          ruleSettings as never,
        )
      ) {
        notify = 'worse';
      } else if (
        now.getTime() - alert.lastNotifiedAt.getTime() >=
        ruleSettings.cooldownHours * HOUR_MS
      ) {
        notify = 'reminder';
      }
      steps.push({ alert, finding, notify, resolve: null, newMembers, clearedNote: null });
    }
  }

  for (const alert of open) {
    if (found.has(alert.key)) continue;
    const rule = alert.rule as RuleId;
    const enabled = settings.get(rule)?.enabled ?? false;
    if (!enabled) {
      steps.push({
        alert,
        finding: storedFinding(alert),
        notify: null,
        resolve: 'rule-disabled',
        newMembers: [],
        clearedNote: null,
      });
    } else if (results.has(rule) && !failedRules.has(rule)) {
      steps.push({
        alert,
        finding: storedFinding(alert),
        // An alert that was never sent needs no resolution message either.
        notify: alert.lastNotifiedAt ? 'resolved' : null,
        resolve: 'cleared',
        newMembers: [],
        clearedNote: results.get(rule)!.cleared?.get(alert.key) ?? null,
      });
    }
  }
  return steps;
}

function recipientsOf(
  env: AlertEnvironment,
  settings: AnyRuleSettings,
  finding: Finding,
): string[] {
  const base = settings.recipients.length > 0 ? settings.recipients : env.alertTo;
  return [...new Set([...base, ...(finding.extraRecipients ?? [])].map((a) => a.toLowerCase()))];
}

function toNotification(
  env: AlertEnvironment,
  step: PlanStep,
  settings: AnyRuleSettings,
  now: Date,
): PlannedNotification {
  const { finding } = step;
  return {
    key: finding.key,
    rule: finding.rule,
    kind: step.notify!,
    severity: finding.severity,
    domain: finding.domain,
    service: finding.service,
    recipients: recipientsOf(env, settings, finding),
    finding,
    message: renderAlertMessage({
      kind: step.notify!,
      finding,
      newMembers: step.newMembers,
      clearedNote: step.clearedNote,
      cooldownHours: settings.cooldownHours,
      changeLabel: RULES[finding.rule].changeLabel,
      publicUrl: env.publicUrl,
      at: now,
    }),
  };
}

function alertValues(finding: Finding) {
  return {
    key: finding.key,
    rule: finding.rule,
    domain: finding.domain,
    service: finding.service,
    severity: finding.severity,
    title: finding.title,
    details: finding as unknown as Record<string, unknown>,
    level: finding.level,
    members: finding.members,
  };
}

async function applyStep(
  env: AlertEnvironment,
  client: pg.PoolClient,
  step: PlanStep,
  notification: PlannedNotification | null,
  now: Date,
): Promise<number[]> {
  let alertId = step.alert?.id ?? null;
  if (step.resolve) {
    await resolveAlert(client, alertId!, now, step.resolve);
  } else if (alertId === null) {
    alertId = await insertAlert(client, alertValues(step.finding), now);
  } else {
    await updateAlert(client, alertId, alertValues(step.finding), now);
  }
  if (!notification) return [];
  // Left unsent, so that it goes out as soon as a recipient is configured; counted in the log
  // line of the evaluation.
  if (notification.recipients.length === 0) return [];
  const ids: number[] = [];
  for (const recipient of notification.recipients) {
    ids.push(
      await insertDelivery(
        client,
        { alertId, kind: notification.kind, recipient, ...notification.message },
        now,
      ),
    );
  }
  if (!step.resolve) await markAlertNotified(client, alertId!, now);
  return ids;
}

/**
 * Evaluates every enabled rule and queues the messages it decides on. With `dryRun`, changes
 * nothing and returns what would be sent.
 */
export async function evaluateAlerts(
  env: AlertEnvironment,
  options: { dryRun?: boolean } = {},
): Promise<EvaluationResult> {
  const now = env.now();

  // The rules read through the pool, outside the transaction below: the embedded PGlite
  // serves one transaction at a time, so reads on other connections would wait for it.
  const settings = await effectiveRuleSettings(env);
  const { results, errors } = await runRules(env, settings, now);
  const failed = new Set(errors.map((error) => error.rule));

  const plan = async (db: pg.Pool | pg.PoolClient) => {
    const open = await findOpenAlerts(db);
    const steps = planChanges(open, results, settings, failed, now);
    const planned = steps.map((step) =>
      step.notify ? toNotification(env, step, settings.get(step.finding.rule)!, now) : null,
    );
    const stillOpen =
      open.length + steps.filter((s) => !s.alert).length - steps.filter((s) => s.resolve).length;
    return { settings, steps, planned, errors, open: stillOpen };
  };

  if (options.dryRun) {
    const outcome = await plan(env.pool);
    return {
      evaluatedAt: now,
      skipped: false,
      notifications: outcome.planned.filter((n) => n !== null),
      open: outcome.open,
      errors: outcome.errors,
      deliveryIds: [],
    };
  }

  const locked = await withEvaluationLock(env.pool, async (client) => {
    const outcome = await plan(client);
    for (const [rule, ruleSettings] of outcome.settings) {
      await saveRuleSettings(client, rule, ruleSettings.enabled, ruleSettings, now);
    }
    const deliveryIds: number[] = [];
    for (const [index, step] of outcome.steps.entries()) {
      deliveryIds.push(...(await applyStep(env, client, step, outcome.planned[index], now)));
    }
    return { ...outcome, deliveryIds };
  });

  if (!locked) {
    env.log.debug('Another instance is evaluating alerts; skipped');
    return {
      evaluatedAt: now,
      skipped: true,
      notifications: [],
      open: 0,
      errors: [],
      deliveryIds: [],
    };
  }
  const { result } = locked;
  const notifications = result.planned.filter((n) => n !== null);
  const unaddressed = notifications.filter((n) => n.recipients.length === 0).length;
  if (unaddressed > 0) {
    env.log.info(
      { alerts: unaddressed },
      'Alerts not sent for want of recipients: set ALERT_TO or the rule recipients',
    );
  }
  env.log.info(
    {
      notifications: notifications.length,
      deliveries: result.deliveryIds.length,
      open: result.open,
      failedRules: result.errors.length,
    },
    'Evaluated alert rules',
  );
  return {
    evaluatedAt: now,
    skipped: false,
    notifications,
    open: result.open,
    errors: result.errors,
    deliveryIds: result.deliveryIds,
  };
}
