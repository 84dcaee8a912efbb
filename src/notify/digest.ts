/**
 * Daily and weekly digests: volume, DMARC pass rate and its trend, the top failing services
 * and sources, new sources, open recommendations and open alerts, one e-mail per recipient.
 */
import type pg from 'pg';

import type { Recommendation } from '../analyze/recommendations.js';
import {
  claimDigest,
  findDailyTotals,
  findDomainTotals,
  findNewSources,
  findOpenAlerts,
  findTopFailingServices,
  findTopFailingSources,
  insertDelivery,
  isDigestClaimed,
  linkDigestDelivery,
} from '../store/alerts.js';
import { formatCount, formatPercent, SUBJECT_PREFIX, type FindingTable } from './alert.js';
import { createAnalysis, findRecommendations, type AlertEnvironment } from './evaluate.js';
import {
  dashboardUrl,
  escapeHtml,
  htmlPage,
  htmlTable,
  textTable,
  type RenderedMessage,
} from './render.js';
import { addDays, utcDay } from './rules/context.js';
import { digestSubscriptions, type DigestSubscription } from './settings.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// A digest missed by more than this (the service was down) waits for its next period instead
// of arriving late.
const GRACE_MS = DAY_MS;
const TOP = 5;
const RECOMMENDATION_DAYS = 30;

/** The period a digest covers: report days `from` to `to`, compared with the one before. */
export interface DigestPeriod {
  every: 'daily' | 'weekly';
  /** The day the digest is scheduled on; with the recipient, identifies it. */
  scheduledDay: string;
  from: string;
  to: string;
  previousFrom: string;
  previousTo: string;
}

/** Returns the digest period due at `now` for a subscription, or null when none is due. */
export function dueDigestPeriod(subscription: DigestSubscription, now: Date): DigestPeriod | null {
  const today = utcDay(now);
  let scheduledDay = today;
  if (subscription.every === 'weekly') {
    const back = (now.getUTCDay() - subscription.weekday + 7) % 7;
    scheduledDay = addDays(today, -back);
  }
  const scheduledAt = Date.parse(`${scheduledDay}T00:00:00Z`) + subscription.hour * HOUR_MS;
  if (now.getTime() < scheduledAt || now.getTime() >= scheduledAt + GRACE_MS) return null;

  const days = subscription.every === 'weekly' ? 7 : 1;
  const to = addDays(scheduledDay, -1);
  const from = addDays(scheduledDay, -days);
  return {
    every: subscription.every,
    scheduledDay,
    from,
    to,
    previousFrom: addDays(from, -days),
    previousTo: addDays(from, -1),
  };
}

function trend(current: number, previous: number | null): string {
  if (previous === null) return 'no earlier data';
  const points = Math.round((current - previous) * 10) / 10;
  return `${points >= 0 ? '+' : ''}${points} points`;
}

function rate(pass: number, messages: number): number {
  return messages === 0 ? 0 : Math.round((pass / messages) * 1000) / 10;
}

interface DigestSection {
  heading: string;
  table: FindingTable | null;
  empty: string;
}

/** Builds the digest of one period from the stored data. */
export async function buildDigest(
  pool: pg.Pool,
  period: DigestPeriod,
  publicUrl: string,
  recommendations: Recommendation[],
): Promise<RenderedMessage> {
  const [days, domains, previous, services, sources, newSources, openAlerts] = await Promise.all([
    findDailyTotals(pool, period.from, period.to),
    findDomainTotals(pool, period.from, period.to),
    findDomainTotals(pool, period.previousFrom, period.previousTo),
    findTopFailingServices(pool, period.from, period.to, TOP),
    findTopFailingSources(pool, period.from, period.to, TOP),
    findNewSources(pool, period.from, period.to, 10),
    findOpenAlerts(pool),
  ]);

  const messages = domains.reduce((sum, d) => sum + d.messages, 0);
  const pass = domains.reduce((sum, d) => sum + d.passMessages, 0);
  const previousMessages = previous.reduce((sum, d) => sum + d.messages, 0);
  const previousPass = previous.reduce((sum, d) => sum + d.passMessages, 0);
  const currentRate = rate(pass, messages);
  const previousRate = previousMessages > 0 ? rate(previousPass, previousMessages) : null;
  const previousByDomain = new Map(previous.map((d) => [d.domain, d]));
  const label = period.every === 'weekly' ? 'Weekly' : 'Daily';
  const range = period.from === period.to ? period.from : `${period.from} to ${period.to}`;
  const title =
    `${label} digest ${range}: ${formatCount(messages)} messages, ${currentRate}% pass DMARC` +
    (previousRate === null ? '' : ` (${trend(currentRate, previousRate)})`);

  const open = recommendations
    .filter((r) => r.severity !== 'info')
    .concat(recommendations.filter((r) => r.severity === 'info'));
  const sections: DigestSection[] = [
    {
      heading: 'Volume and pass rate per domain',
      empty: 'No reports about these days.',
      table: {
        caption: 'Domains',
        columns: ['Domain', 'Messages', 'Pass rate', 'Before', 'Trend'],
        rows: domains.map((d) => {
          const before = previousByDomain.get(d.domain);
          const beforeRate =
            before && before.messages > 0 ? rate(before.passMessages, before.messages) : null;
          return [
            d.domain,
            formatCount(d.messages),
            `${rate(d.passMessages, d.messages)}%`,
            beforeRate === null ? '–' : `${beforeRate}%`,
            trend(rate(d.passMessages, d.messages), beforeRate),
          ];
        }),
      },
    },
    {
      heading: 'Per report day',
      empty: 'No reports about these days.',
      table: {
        caption: 'Days',
        columns: ['Day', 'Messages', 'Pass rate'],
        rows: days.map((d) => [
          d.day,
          formatCount(d.messages),
          formatPercent(d.passMessages, d.messages),
        ]),
      },
    },
    {
      heading: 'Top failing services',
      empty: 'No catalog service failed DMARC.',
      table: {
        caption: 'Services',
        columns: ['Service', 'Domain', 'Failing', 'Pass rate'],
        rows: services.map((s) => [
          s.service,
          s.domain,
          formatCount(s.messages - s.passMessages),
          formatPercent(s.passMessages, s.messages),
        ]),
      },
    },
    {
      heading: 'Top failing sources',
      empty: 'No source failed DMARC.',
      table: {
        caption: 'Sources',
        columns: ['Source IP', 'Service', 'Domain', 'Failing', 'Pass rate'],
        rows: sources.map((s) => [
          s.sourceIp ?? '(no source IP)',
          s.service ?? 'unattributed',
          s.domain,
          formatCount(s.messages - s.passMessages),
          formatPercent(s.passMessages, s.messages),
        ]),
      },
    },
    {
      heading: 'New sources',
      empty: 'No source appeared for the first time.',
      table: {
        caption: 'New sources',
        columns: ['Source IP', 'Service', 'Domain', 'First seen', 'Messages', 'Pass rate'],
        rows: newSources.map((s) => [
          s.sourceIp ?? '(no source IP)',
          s.service ?? 'unattributed',
          s.domain,
          s.firstSeen ? utcDay(s.firstSeen) : '',
          formatCount(s.messages),
          formatPercent(s.passMessages, s.messages),
        ]),
      },
    },
    {
      heading: 'Open recommendations',
      empty: 'No open recommendations.',
      table: {
        caption: 'Recommendations',
        columns: ['Severity', 'Domain', 'Service', 'Recommendation'],
        rows: open.slice(0, 10).map((r) => [r.severity, r.domain, r.service, r.summary]),
      },
    },
    {
      heading: 'Open alerts',
      empty: 'No open alerts.',
      table: {
        caption: 'Alerts',
        columns: ['Severity', 'Since', 'Alert'],
        rows: openAlerts.slice(0, 10).map((a) => [a.severity, utcDay(a.openedAt), a.title]),
      },
    },
  ];

  const url = dashboardUrl(publicUrl, {
    path: '/',
    params: { range: 'custom', from: period.from, to: period.to },
  });
  const summary =
    `${formatCount(messages)} messages From your domains were reported for ${range}; ` +
    `${currentRate}% passed DMARC` +
    (previousRate === null
      ? '.'
      : `, against ${previousRate}% in the ${period.every === 'weekly' ? 'week' : 'day'} before (${trend(currentRate, previousRate)}).`);
  const footer = `dmarc-lens ${period.every} digest for ${range}. Change digests in the alert settings.`;

  const text = [title, '', summary];
  const html = [`<p>${escapeHtml(summary)}</p>`];
  for (const section of sections) {
    const rows = section.table?.rows.length ?? 0;
    text.push(
      '',
      section.heading,
      rows > 0
        ? textTable({ ...section.table!, caption: '' }).replace(/^\n/, '')
        : `  ${section.empty}`,
    );
    html.push(
      `<h3 style="font-size:15px;margin-top:20px">${escapeHtml(section.heading)}</h3>`,
      rows > 0
        ? htmlTable({ ...section.table!, caption: '' })
        : `<p>${escapeHtml(section.empty)}</p>`,
    );
  }
  text.push('', `Open in the dashboard: ${url}`, '', '-- ', footer);
  html.push(`<p><a href="${escapeHtml(url)}">Open in the dashboard</a></p>`);

  return {
    subject: `${SUBJECT_PREFIX} ${title}`,
    text: text.join('\n'),
    html: htmlPage(title, html.join('\n'), footer),
  };
}

/** A digest that is due, with its recipient and content. */
export interface DueDigest {
  recipient: string;
  period: DigestPeriod;
  message: RenderedMessage;
}

/**
 * Finds the digests due at the present time that were not queued yet, and, unless `dryRun`,
 * queues them. Each recipient and period is claimed in the database, so it is queued once.
 */
export async function queueDueDigests(
  env: AlertEnvironment,
  options: { dryRun?: boolean } = {},
): Promise<{ digests: DueDigest[]; deliveryIds: number[] }> {
  const now = env.now();
  const due: { subscription: DigestSubscription; period: DigestPeriod }[] = [];
  for (const subscription of digestSubscriptions(env.settings, env.alertTo)) {
    const period = dueDigestPeriod(subscription, now);
    if (!period) continue;
    if (await isDigestClaimed(env.pool, subscription.recipient, period.every, period.scheduledDay))
      continue;
    due.push({ subscription, period });
  }
  if (due.length === 0) return { digests: [], deliveryIds: [] };

  const recommendations = await findRecommendations(createAnalysis(env), now, RECOMMENDATION_DAYS);
  const built = new Map<string, RenderedMessage>();
  const digests: DueDigest[] = [];
  for (const { subscription, period } of due) {
    const id = `${period.every}:${period.scheduledDay}`;
    if (!built.has(id))
      built.set(id, await buildDigest(env.pool, period, env.publicUrl, recommendations));
    digests.push({ recipient: subscription.recipient, period, message: built.get(id)! });
  }
  if (options.dryRun) return { digests, deliveryIds: [] };

  const deliveryIds: number[] = [];
  const queued: DueDigest[] = [];
  for (const digest of digests) {
    const id = await queueDigest(env.pool, digest, now);
    if (id !== null) {
      deliveryIds.push(id);
      queued.push(digest);
    }
  }
  if (queued.length > 0) env.log.info({ digests: queued.length }, 'Queued alert digests');
  return { digests: queued, deliveryIds };
}

// Claim and message in one transaction: a crash between them must not mark a digest as sent.
async function queueDigest(pool: pg.Pool, digest: DueDigest, now: Date): Promise<number | null> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { every, scheduledDay } = digest.period;
    if (!(await claimDigest(client, digest.recipient, every, scheduledDay, now))) {
      await client.query('ROLLBACK');
      return null;
    }
    const id = await insertDelivery(
      client,
      { alertId: null, kind: 'digest', recipient: digest.recipient, ...digest.message },
      now,
    );
    await linkDigestDelivery(client, digest.recipient, every, scheduledDay, id);
    await client.query('COMMIT');
    return id;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
