/**
 * Alerting as the commands use it: evaluate the rules, queue due digests, deliver, and send a
 * test message. Built from the configuration, with a clock and a mail transport that tests
 * can replace.
 */
import type pg from 'pg';
import type { Logger } from 'pino';

import type { Config } from '../config.js';
import { findDeliveries, insertDelivery, type DeliveryState } from '../store/alerts.js';
import { queueDueDigests, type DueDigest } from './digest.js';
import { evaluateAlerts, type AlertEnvironment, type EvaluationResult } from './evaluate.js';
import {
  AlertDeliverer,
  createSmtpTransport,
  senderAddress,
  type DeliveryOutcome,
  type MailTransport,
} from './mailer.js';
import { renderAlertMessage } from './render.js';
import { loadAlertSettings, type AlertSettingsFile } from './settings.js';
import { sampleFinding } from './sample.js';

export interface AlertingOptions {
  pool: pg.Pool;
  log: Logger;
  config: Pick<Config, 'publicUrl' | 'alertTo' | 'alertFrom' | 'smtpUrl' | 'alertRulesFile'>;
  /** Defaults to the ALERT_RULES_FILE of the configuration. */
  settings?: AlertSettingsFile;
  now?: () => Date;
  /** Defaults to SMTP_URL through nodemailer; null when SMTP_URL is not set. */
  transport?: MailTransport | null;
  /**
   * Runs before each evaluation, to roll up and attribute what was just ingested; without it
   * the rules skip senders not attributed yet.
   */
  refresh?: () => Promise<unknown>;
}

/** The outcome of one `run`. */
export interface AlertRun {
  evaluation: EvaluationResult;
  digests: DueDigest[];
  /** Null in a dry run. */
  delivery: DeliveryOutcome | null;
}

export interface Alerting {
  env: AlertEnvironment;
  deliverer: AlertDeliverer;
  /** Evaluates the rules, queues due digests and delivers what is due. */
  run(options?: { dryRun?: boolean }): Promise<AlertRun>;
  /** Sends a sample alert once, without retries, and returns its delivery per recipient. */
  sendTest(recipients?: string[]): Promise<DeliveryState[]>;
}

/**
 * Builds alerting from the configuration.
 * @throws AlertSettingsError when ALERT_RULES_FILE is invalid
 */
export function createAlerting(options: AlertingOptions): Alerting {
  const { config } = options;
  const env: AlertEnvironment = {
    pool: options.pool,
    log: options.log.child({ component: 'alerts' }),
    publicUrl: config.publicUrl,
    alertTo: config.alertTo,
    settings: options.settings ?? loadAlertSettings(config.alertRulesFile),
    now: options.now ?? (() => new Date()),
  };
  const transport =
    options.transport !== undefined
      ? options.transport
      : config.smtpUrl
        ? createSmtpTransport(config.smtpUrl)
        : null;
  const from = senderAddress(config.alertFrom, config.publicUrl);
  const deliverer = new AlertDeliverer({
    pool: env.pool,
    log: options.log,
    transport,
    from,
    retryMinutes: env.settings.retryMinutes,
    now: env.now,
  });

  return {
    env,
    deliverer,

    async run(runOptions = {}) {
      await options.refresh?.();
      const evaluation = await evaluateAlerts(env, runOptions);
      const { digests } = await queueDueDigests(env, runOptions);
      const delivery = runOptions.dryRun ? null : await deliverer.deliverDue();
      return { evaluation, digests, delivery };
    },

    async sendTest(recipients = config.alertTo) {
      if (recipients.length === 0) {
        throw new Error('No recipient for the test alert: set ALERT_TO or pass --to');
      }
      const now = env.now();
      const message = renderAlertMessage({
        kind: 'opened',
        finding: sampleFinding(now),
        newMembers: [],
        clearedNote: null,
        cooldownHours: 24,
        publicUrl: env.publicUrl,
        at: now,
      });
      const ids: number[] = [];
      for (const recipient of recipients) {
        ids.push(
          await insertDelivery(
            env.pool,
            { alertId: null, kind: 'test', recipient, ...message },
            now,
          ),
        );
      }
      // One attempt, so that the command reports the SMTP error at once.
      const once = new AlertDeliverer({
        pool: env.pool,
        log: options.log,
        transport,
        from,
        retryMinutes: [],
        now: env.now,
      });
      await once.deliverDue(ids);
      return findDeliveries(env.pool, ids);
    },
  };
}
