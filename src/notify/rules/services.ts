/**
 * The service pass-rate rule: a catalog service whose mail passes DMARC less often than its
 * threshold, or clearly less often than over its own baseline.
 */
import { findServicePassRates, type ServicePassRate } from '../../store/alerts.js';
import {
  diagnoseSender,
  findSenderTotals,
  type PublishedPolicy,
  type SenderTotals,
} from '../../store/analysis.js';
import { formatCount, type Finding } from '../alert.js';
import { addDays, recentWindow, type AlertRuleDefinition, type RuleContext } from './context.js';

function rate(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 1000) / 10;
}

/** Finds the failing senders of one service and domain, most failing first, with their diagnoses. */
async function failingSenders(
  context: RuleContext,
  row: ServicePassRate,
  window: { from: string; to: string },
  policy: PublishedPolicy | undefined,
): Promise<{ sender: SenderTotals; summary: string }[]> {
  const senders = await findSenderTotals(context.pool, {
    from: window.from,
    to: window.to,
    domain: row.domain,
    service: row.service,
    reporter: null,
  });
  return senders
    .filter((sender) => sender.domain === row.domain && sender.messages > sender.pass)
    .sort((a, b) => b.messages - b.pass - (a.messages - a.pass))
    .map((sender) => ({
      sender,
      summary: diagnoseSender(sender, policy)
        .map((diagnosis) => diagnosis.summary)
        .join('; '),
    }));
}

function thresholdOf(
  settings: { threshold: number; services: Record<string, { threshold: number }> },
  service: string,
): number {
  const lower = service.toLowerCase();
  for (const [name, override] of Object.entries(settings.services)) {
    if (name.toLowerCase() === lower) return override.threshold;
  }
  return settings.threshold;
}

function isEnforced(policy: PublishedPolicy | undefined): boolean {
  const p = policy?.p?.trim().toLowerCase();
  return p === 'quarantine' || p === 'reject';
}

export const servicePassRate: AlertRuleDefinition<'service-pass-rate'> = {
  id: 'service-pass-rate',
  name: 'Service pass rate',
  description:
    'A catalog service passes DMARC below its threshold, or well below its own baseline.',

  async evaluate(context, settings) {
    const recent = recentWindow(context.now, settings.windowDays);
    const baselineFrom = addDays(recent.from, -settings.baselineDays);
    const rows = await findServicePassRates(context.pool, baselineFrom, recent.from, recent.to);
    const findings: Finding[] = [];
    const cleared = new Map<string, string>();

    for (const row of rows) {
      if (row.messages < settings.minMessages) continue;
      const key = `service-pass-rate:${row.domain}:${row.service.toLowerCase()}`;
      const current = rate(row.passMessages, row.messages);
      const threshold = thresholdOf(settings, row.service);
      const baseline =
        row.baselineMessages >= settings.minMessages
          ? rate(row.baselinePass, row.baselineMessages)
          : null;
      const belowThreshold = current < threshold;
      const belowBaseline = baseline !== null && current < baseline - settings.baselineDropPoints;
      if (!belowThreshold && !belowBaseline) {
        cleared.set(
          key,
          `${row.domain}: ${row.service} DMARC pass rate is back to ${current}% (threshold ${threshold}%)`,
        );
        continue;
      }
      findings.push(
        await describe(context, settings, row, {
          current,
          threshold,
          baseline,
          belowThreshold,
          recent,
        }),
      );
    }
    return { findings, cleared };
  },

  isWorse(sent, finding, settings) {
    return sent.level === null || finding.level >= sent.level + settings.worseByPoints;
  },
};

async function describe(
  context: RuleContext,
  settings: Parameters<typeof servicePassRate.evaluate>[1],
  row: ServicePassRate,
  rates: {
    current: number;
    threshold: number;
    baseline: number | null;
    belowThreshold: boolean;
    recent: { from: string; to: string };
  },
): Promise<Finding> {
  const { current, threshold, baseline, recent } = rates;
  const policy = (await context.policies()).get(row.domain);
  const senders = await failingSenders(context, row, recent, policy);
  const { rows: diagnoses } = await context.analysis.diagnoses({
    from: recent.from,
    to: recent.to,
    domain: row.domain,
    service: row.service,
  });
  const top = diagnoses.find(
    (diagnosis) => diagnosis.domain === row.domain && diagnosis.fix !== null,
  );
  const failing = row.messages - row.passMessages;

  const verb = baseline !== null && baseline - current >= 1 ? 'fell to' : 'is';
  const reference = rates.belowThreshold
    ? `threshold ${threshold}%`
    : `baseline ${baseline}%, threshold ${threshold}%`;
  const enforced = isEnforced(policy);
  const contact = settings.notifyServiceOwner
    ? context.contacts.get(row.service.toLowerCase())
    : undefined;

  return {
    key: `service-pass-rate:${row.domain}:${row.service.toLowerCase()}`,
    rule: 'service-pass-rate',
    domain: row.domain,
    service: row.service,
    severity: enforced ? 'critical' : 'warning',
    title: `${row.domain}: ${row.service} DMARC pass rate ${verb} ${current}% (${reference})`,
    summary:
      `${formatCount(failing)} of ${formatCount(row.messages)} messages that ${row.service} ` +
      `sent From ${row.domain} between ${recent.from} and ${recent.to} failed DMARC. ` +
      (enforced
        ? `With p=${policy?.p} receivers quarantine or reject them: this mail is being lost.`
        : 'Fix it before moving the domain to a stricter policy.'),
    facts: [
      ['Pass rate', `${current}%`],
      ['Threshold', `${threshold}%`],
      ['Baseline pass rate', baseline === null ? 'not enough mail' : `${baseline}%`],
      ['Messages', formatCount(row.messages)],
      ['Failing messages', formatCount(failing)],
      ['Report days', `${recent.from} to ${recent.to}`],
    ],
    table: {
      caption: 'Failing senders',
      columns: ['Source IP', 'Header From', 'Failing', 'Messages', 'Diagnosis'],
      rows: senders
        .slice(0, 10)
        .map(({ sender, summary }) => [
          sender.sourceIp ?? '(no source IP)',
          sender.headerFrom ?? '',
          formatCount(sender.messages - sender.pass),
          formatCount(sender.messages),
          summary,
        ]),
    },
    cause: top
      ? `${top.summary} (${formatCount(top.messages)} of ${formatCount(failing)} failing messages)`
      : 'The reports show no DKIM or SPF result that explains the failures; see the records.',
    fix: top?.fix ?? `Make ${row.service} sign with a DKIM key published under ${row.domain}.`,
    link: {
      path: '/services',
      params: {
        range: 'custom',
        from: recent.from,
        to: recent.to,
        domain: row.domain,
        service: row.service,
      },
    },
    level: Math.round((100 - current) * 10) / 10,
    members: [],
    extraRecipients: contact ? [contact] : [],
  };
}
