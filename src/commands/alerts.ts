/**
 * `dmarc-lens alerts run` evaluates the alert rules now and sends what they decide, or with
 * `--dry-run` prints it; `dmarc-lens alerts test` sends a sample alert to check SMTP.
 */
import { AnalysisService } from '../analyze/service.js';
import { createAlerting, type AlertRun } from '../notify/alerting.js';
import type { Runtime } from '../runtime.js';

export interface AlertsRunOptions {
  dryRun?: boolean;
  format: 'text' | 'json';
}

/**
 * Alerting for a command: loads SERVICES_FILE when it changed, and rolls up and attributes
 * before evaluating, so that the rules see every stored report.
 */
async function openAlerting(runtime: Runtime) {
  const analysis = new AnalysisService({
    pool: runtime.db.pool,
    log: runtime.log,
    config: runtime.config,
  });
  await analysis.syncCatalogFile();
  return createAlerting({
    pool: runtime.db.pool,
    log: runtime.log,
    config: runtime.config,
    refresh: () => analysis.refresh(),
  });
}

function toJson(run: AlertRun, dryRun: boolean) {
  return {
    evaluated_at: run.evaluation.evaluatedAt.toISOString(),
    dry_run: dryRun,
    skipped: run.evaluation.skipped,
    open_alerts: run.evaluation.open,
    notifications: run.evaluation.notifications.map((notification) => ({
      kind: notification.kind,
      key: notification.key,
      rule: notification.rule,
      severity: notification.severity,
      domain: notification.domain,
      service: notification.service,
      recipients: notification.recipients,
      subject: notification.message.subject,
      text: notification.message.text,
      html: notification.message.html,
    })),
    digests: run.digests.map((digest) => ({
      recipient: digest.recipient,
      every: digest.period.every,
      from: digest.period.from,
      to: digest.period.to,
      subject: digest.message.subject,
      text: digest.message.text,
      html: digest.message.html,
    })),
    rule_errors: run.evaluation.errors,
    delivery: run.delivery,
  };
}

function toText(run: AlertRun, dryRun: boolean): string {
  const { evaluation } = run;
  if (evaluation.skipped) return 'Another instance is evaluating the alert rules; nothing done.\n';
  const verb = dryRun ? 'Would send' : 'Sent';
  const lines = [
    `Evaluated the alert rules at ${evaluation.evaluatedAt.toISOString()}: ` +
      `${evaluation.notifications.length} alert messages, ${run.digests.length} digests, ` +
      `${evaluation.open} open alerts.`,
  ];
  for (const notification of evaluation.notifications) {
    const to = notification.recipients.join(', ') || 'no recipient (set ALERT_TO)';
    lines.push(`  ${verb}: ${notification.message.subject}`, `    to ${to}`);
  }
  for (const digest of run.digests) {
    lines.push(`  ${verb}: ${digest.message.subject}`, `    to ${digest.recipient}`);
  }
  for (const error of evaluation.errors) {
    lines.push(`  Rule ${error.rule} failed: ${error.message}`);
  }
  if (run.delivery) {
    const { sent, retrying, failed } = run.delivery;
    lines.push(`Delivery: ${sent} sent, ${retrying} to retry, ${failed} failed.`);
    if (retrying > 0) lines.push('Messages to retry are sent by `dmarc-lens serve`.');
  }
  return `${lines.join('\n')}\n`;
}

/** `dmarc-lens alerts run`; exits 1 when a rule or a delivery failed. */
export async function runAlerts(runtime: Runtime, options: AlertsRunOptions): Promise<number> {
  const alerting = await openAlerting(runtime);
  const run = await alerting.run({ dryRun: options.dryRun });
  const dryRun = options.dryRun ?? false;
  process.stdout.write(
    options.format === 'json'
      ? `${JSON.stringify(toJson(run, dryRun), null, 2)}\n`
      : toText(run, dryRun),
  );
  const failed = run.evaluation.errors.length > 0 || (run.delivery?.failed ?? 0) > 0;
  return failed ? 1 : 0;
}

/** `dmarc-lens alerts test`: one attempt per recipient; exits 1 when any failed. */
export async function runAlertsTest(runtime: Runtime, options: { to?: string[] }): Promise<number> {
  if (!runtime.config.smtpUrl) {
    process.stderr.write('dmarc-lens: SMTP_URL is not set: there is no server to send through\n');
    return 2;
  }
  const alerting = createAlerting({
    pool: runtime.db.pool,
    log: runtime.log,
    config: runtime.config,
  });
  const deliveries = await alerting.sendTest(options.to);
  for (const delivery of deliveries) {
    const outcome =
      delivery.status === 'sent' ? 'sent' : `failed: ${delivery.lastError ?? 'unknown error'}`;
    process.stdout.write(`Test alert to ${delivery.recipient}: ${outcome}\n`);
  }
  return deliveries.every((delivery) => delivery.status === 'sent') ? 0 : 1;
}
