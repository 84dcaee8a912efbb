/**
 * Delivery of queued alert messages through SMTP_URL with nodemailer. A failed attempt is
 * retried after each of the configured delays, and then the message is marked failed. Either
 * way the outcome stays in alert_deliveries, where the dashboard shows it.
 */
import nodemailer from 'nodemailer';
import type pg from 'pg';
import type { Logger } from 'pino';

import {
  claimDueDeliveries,
  markDeliveryAttemptFailed,
  markDeliverySent,
  type ClaimedDelivery,
} from '../store/alerts.js';

/** The part of a nodemailer transport that delivery uses; tests may pass their own. */
export interface MailTransport {
  sendMail(message: {
    from: string;
    to: string;
    subject: string;
    text: string;
    html: string;
    headers: Record<string, string>;
  }): Promise<{ messageId?: string }>;
}

/**
 * Creates a nodemailer SMTP transport for SMTP_URL (smtp:// or smtps://, with user and password in
 * the URL when the server needs them).
 */
export function createSmtpTransport(smtpUrl: string): MailTransport {
  return nodemailer.createTransport({
    url: smtpUrl,
    // Short timeouts: a hung server costs one attempt, and the retry comes later.
    connectionTimeout: 20_000,
    greetingTimeout: 20_000,
    socketTimeout: 60_000,
  }) as MailTransport;
}

/** Returns the sender address: ALERT_FROM, or dmarc-lens at the host of PUBLIC_URL. */
export function senderAddress(alertFrom: string | undefined, publicUrl: string): string {
  if (alertFrom) return alertFrom;
  return `dmarc-lens@${new URL(publicUrl).hostname || 'localhost'}`;
}

export interface DelivererOptions {
  pool: pg.Pool;
  log: Logger;
  /** Null when SMTP_URL is not set: every message fails at once with that reason. */
  transport: MailTransport | null;
  from: string;
  /** Minutes before each retry; a message gets one attempt more than there are entries. */
  retryMinutes: number[];
  now: () => Date;
}

export interface DeliveryOutcome {
  sent: number;
  /** Failed attempts that will be retried. */
  retrying: number;
  /** Messages that failed for good in this run. */
  failed: number;
}

// An attempt longer than this is taken as lost (a crash mid-send), and the message is due again.
const LEASE_MS = 5 * 60_000;
const BATCH = 20;

/** Sends the messages that are due, with retries. */
export class AlertDeliverer {
  private readonly log: Logger;

  constructor(private readonly options: DelivererOptions) {
    this.log = options.log.child({ component: 'alert-mail' });
  }

  /** Sends every message due now, or only those in `onlyIds`. */
  async deliverDue(onlyIds: number[] | null = null): Promise<DeliveryOutcome> {
    const outcome: DeliveryOutcome = { sent: 0, retrying: 0, failed: 0 };
    for (;;) {
      const now = this.options.now();
      const claimed = await claimDueDeliveries(
        this.options.pool,
        now,
        new Date(now.getTime() + LEASE_MS),
        BATCH,
        onlyIds,
      );
      for (const delivery of claimed) await this.attempt(delivery, outcome);
      if (claimed.length < BATCH) return outcome;
    }
  }

  private async attempt(delivery: ClaimedDelivery, outcome: DeliveryOutcome): Promise<void> {
    const { pool, transport, retryMinutes } = this.options;
    const fields = {
      delivery: delivery.id,
      alert: delivery.alertId,
      recipient: delivery.recipient,
    };
    if (!transport) {
      await markDeliveryAttemptFailed(pool, delivery.id, 'SMTP_URL is not set', null);
      this.log.error(
        { ...fields, subject: delivery.subject },
        'Alert not sent: SMTP_URL is not set',
      );
      outcome.failed += 1;
      return;
    }

    try {
      const info = await transport.sendMail({
        from: this.options.from,
        to: delivery.recipient,
        subject: delivery.subject,
        text: delivery.text,
        html: delivery.html,
        // RFC 3834: keeps vacation responders from replying to alerts.
        headers: { 'Auto-Submitted': 'auto-generated', 'X-Dmarc-Lens-Kind': delivery.kind },
      });
      await markDeliverySent(pool, delivery.id, this.options.now(), info.messageId ?? null);
      this.log.info({ ...fields, kind: delivery.kind }, 'Alert message sent');
      outcome.sent += 1;
    } catch (error) {
      const message = (error as Error).message;
      const delay = retryMinutes[delivery.attempts - 1];
      if (delay === undefined) {
        await markDeliveryAttemptFailed(pool, delivery.id, message, null);
        this.log.error(
          { ...fields, err: error, attempts: delivery.attempts },
          'Alert message failed after the last retry',
        );
        outcome.failed += 1;
      } else {
        const retryAt = new Date(this.options.now().getTime() + delay * 60_000);
        await markDeliveryAttemptFailed(pool, delivery.id, message, retryAt);
        this.log.warn(
          { ...fields, err: error, attempts: delivery.attempts, retryAt },
          'Alert message failed; retrying',
        );
        outcome.retrying += 1;
      }
    }
  }
}
