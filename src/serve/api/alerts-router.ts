/**
 * The alerts API for the dashboard: alert history with state and delivery result, the
 * deliveries themselves, and the rules with their effective settings. Mounted behind the app's
 * login and CSRF checks; changing a rule or retrying a delivery also needs the admin role.
 */
import { Router, type Request } from 'express';

import type { DashboardLink } from '../../notify/alert.js';
import { effectiveRuleSettings, type AlertEnvironment } from '../../notify/evaluate.js';
import { dashboardUrl } from '../../notify/render.js';
import { RULES } from '../../notify/rules/index.js';
import {
  AlertSettingsError,
  digestSubscriptions,
  RULE_IDS,
  resolveRuleSettings,
  type RuleId,
} from '../../notify/settings.js';
import {
  findRules,
  listAlerts,
  listDeliveries,
  retryDelivery,
  saveRuleOverrides,
  type DeliverySummary,
} from '../../store/alerts.js';
import { getAuth } from '../auth/context.js';
import { requireRole } from '../auth/middleware.js';
import { badRequest, notFound } from '../errors.js';
import { parseId, parsePageRequest } from '../query.js';

const NEWEST_FIRST = { recent: '' };

function single(req: Request, name: string): string | null {
  const value = (req.query as Record<string, unknown>)[name];
  if (value === undefined || value === '') return null;
  if (typeof value !== 'string') {
    throw badRequest('invalid-parameter', `Invalid ${name}: expected one value`);
  }
  return value;
}

function oneOf<T extends string>(req: Request, name: string, values: readonly T[]): T | null {
  const value = single(req, name);
  if (value === null || (values as readonly string[]).includes(value)) return value as T | null;
  throw badRequest(
    'invalid-parameter',
    `Invalid ${name}=${JSON.stringify(value)}: expected one of ${values.join(', ')}`,
  );
}

function parseRule(value: unknown): RuleId {
  if (typeof value !== 'string' || !(RULE_IDS as string[]).includes(value)) {
    throw notFound(`No alert rule ${JSON.stringify(value)}; rules: ${RULE_IDS.join(', ')}`);
  }
  return value as RuleId;
}

/**
 * Summarizes in one word how an alert's messages went: `sent` when every one was accepted, `failed` or
 * `pending` when one is, and `not sent` when it had no recipient.
 */
function deliveryResult(deliveries: DeliverySummary[]): string {
  if (deliveries.length === 0) return 'not sent';
  if (deliveries.some((delivery) => delivery.status === 'failed')) return 'failed';
  if (deliveries.some((delivery) => delivery.status === 'pending')) return 'pending';
  return 'sent';
}

/** Creates the alerts API router; `env` provides the settings file, PUBLIC_URL and the clock. */
export function alertsRouter(env: AlertEnvironment): Router {
  const router = Router();
  const { pool } = env;
  const admin = requireRole('admin');

  router.get('/api/alerts', async (req, res) => {
    const page = parsePageRequest(req, NEWEST_FIRST, { sort: 'recent', order: 'desc' });
    const { total, alerts } = await listAlerts(pool, {
      state: oneOf(req, 'state', ['open', 'resolved'] as const),
      rule: oneOf(req, 'rule', RULE_IDS),
      domain: single(req, 'domain')?.toLowerCase() ?? null,
      limit: page.pageSize,
      offset: (page.page - 1) * page.pageSize,
    });
    res.json({
      total,
      page: page.page,
      pageSize: page.pageSize,
      rows: alerts.map((alert) => {
        const details = alert.details as { link?: DashboardLink };
        return {
          id: alert.id,
          key: alert.key,
          rule: alert.rule,
          domain: alert.domain,
          service: alert.service,
          severity: alert.severity,
          state: alert.state,
          title: alert.title,
          opened_at: alert.openedAt,
          last_seen_at: alert.lastSeenAt,
          last_notified_at: alert.lastNotifiedAt,
          resolved_at: alert.resolvedAt,
          resolution: alert.resolution,
          delivery: deliveryResult(alert.deliveries),
          link: details.link ? dashboardUrl(env.publicUrl, details.link) : null,
          details: alert.details,
          deliveries: alert.deliveries,
        };
      }),
    });
  });

  router.get('/api/alerts/deliveries', async (req, res) => {
    const page = parsePageRequest(req, NEWEST_FIRST, { sort: 'recent', order: 'desc' });
    const { total, rows } = await listDeliveries(pool, {
      status: oneOf(req, 'status', ['pending', 'sent', 'failed'] as const),
      limit: page.pageSize,
      offset: (page.page - 1) * page.pageSize,
    });
    res.json({ total, page: page.page, pageSize: page.pageSize, rows });
  });

  router.post('/api/alerts/deliveries/:id/retry', admin, async (req, res) => {
    const id = parseId(req.params.id, 'delivery');
    if (!(await retryDelivery(pool, id, env.now()))) {
      throw notFound(`No failed delivery ${id}`);
    }
    env.log.info({ delivery: id, by: getAuth(res)!.name }, 'Alert delivery queued again');
    res.json({ id, status: 'pending' });
  });

  router.get('/api/alerts/rules', async (_req, res) => {
    const [effective, stored] = await Promise.all([effectiveRuleSettings(env), findRules(pool)]);
    const byRule = new Map(stored.map((row) => [row.rule, row]));
    res.json({
      rules: RULE_IDS.map((rule) => ({
        rule,
        name: RULES[rule].name,
        description: RULES[rule].description,
        enabled: effective.get(rule)!.enabled,
        settings: effective.get(rule),
        defaults: resolveRuleSettings(rule, {}, {}),
        file: env.settings.rules[rule] ?? {},
        overrides: byRule.get(rule)?.overrides ?? {},
        updated_at: byRule.get(rule)?.updatedAt ?? null,
        updated_by: byRule.get(rule)?.updatedBy ?? null,
      })),
      digests: digestSubscriptions(env.settings, env.alertTo),
      schedule_minutes: env.settings.scheduleMinutes,
      retry_minutes: env.settings.retryMinutes,
    });
  });

  // Replaces the dashboard edits of one rule; `{}` goes back to the file and the defaults.
  router.put('/api/alerts/rules/:rule', admin, async (req, res) => {
    const rule = parseRule(req.params.rule);
    const overrides: unknown = req.body?.overrides;
    if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
      throw badRequest('invalid-body', 'Expected a JSON body { "overrides": { … } }');
    }
    let settings;
    try {
      settings = resolveRuleSettings(rule, env.settings.rules[rule], overrides, 'rule settings');
    } catch (error) {
      if (error instanceof AlertSettingsError) throw badRequest(error.code, error.message);
      throw error;
    }
    const by = getAuth(res)!.name;
    await saveRuleOverrides(
      pool,
      rule,
      settings.enabled,
      settings,
      overrides as Record<string, unknown>,
      by,
      env.now(),
    );
    env.log.info({ rule, by }, 'Alert rule settings changed');
    res.json({ rule, enabled: settings.enabled, settings, overrides });
  });

  return router;
}
