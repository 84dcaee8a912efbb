/**
 * Rules about sources that no catalog service claims: new ones that fail DMARC (likely
 * spoofing), new ones that pass (a legitimate sender missing from the catalog), and spikes of
 * failing unattributed mail.
 */
import { getProvider } from '../../analyze/providers.js';
import {
  findDomainReportDays,
  findUnattributedFailingByDay,
  findUnattributedSources,
  type SourceActivity,
} from '../../store/alerts.js';
import { formatCount, type Finding, type FindingTable } from '../alert.js';
import {
  addDays,
  hasNewMembers,
  listSome,
  recentWindow,
  utcDay,
  type AlertRuleDefinition,
  type RuleContext,
} from './context.js';

const NO_ADDRESS = '(no source IP)';

function sourceTable(sources: SourceActivity[], count: 'failing' | 'passing'): FindingTable {
  const label = count === 'failing' ? 'Failing' : 'Passing';
  return {
    caption: 'Sources',
    columns: ['Source IP', 'First seen', label, 'Messages', 'Reporters', 'Header From'],
    rows: sources.map((source) => [
      source.sourceIp ?? NO_ADDRESS,
      utcDay(source.firstSeen),
      formatCount(
        count === 'failing' ? source.messages - source.passMessages : source.passMessages,
      ),
      formatCount(source.messages),
      String(source.reporters),
      source.headerFrom.join(', '),
    ]),
  };
}

// "New" only when every listed source first appeared within the window; on a first evaluation
// over months of history the same sources are merely unattributed.
function sourceWord(sources: SourceActivity[], window: { from: string }): string {
  const fresh = sources.every((source) => utcDay(source.firstSeen) >= window.from);
  return fresh ? 'new source' : 'unattributed source';
}

function groupByDomain(sources: SourceActivity[]): Map<string, SourceActivity[]> {
  const byDomain = new Map<string, SourceActivity[]>();
  for (const source of sources) {
    const list = byDomain.get(source.domain) ?? [];
    list.push(source);
    byDomain.set(source.domain, list);
  }
  return byDomain;
}

function sourcesLink(
  domain: string,
  sources: SourceActivity[],
  window: { from: string; to: string },
  result: 'pass' | 'fail',
) {
  const params = { range: 'custom', from: window.from, to: window.to, domain, result };
  if (sources.length === 1 && sources[0].sourceIp) {
    return { path: '/records', params: { ...params, source_ip: sources[0].sourceIp } };
  }
  return { path: '/sources', params };
}

async function policyOf(context: RuleContext, domain: string): Promise<string> {
  const policy = (await context.policies()).get(domain);
  return policy?.p?.trim().toLowerCase() || 'none';
}

export const newFailingSource: AlertRuleDefinition<'new-failing-source'> = {
  id: 'new-failing-source',
  name: 'New source failing DMARC',
  description:
    'A source that no catalog service claims sends mail From an owned domain that fails DMARC: likely spoofing.',

  async evaluate(context, settings) {
    const window = recentWindow(context.now, settings.windowDays);
    const sources = await findUnattributedSources(context.pool, window.from, window.to);
    const failing = sources.filter(
      (source) => source.messages - source.passMessages >= settings.minMessages,
    );
    const findings: Finding[] = [];
    for (const [domain, list] of groupByDomain(failing)) {
      const messages = list.reduce((sum, s) => sum + s.messages - s.passMessages, 0);
      const p = await policyOf(context, domain);
      const addresses = list.map((source) => source.sourceIp ?? NO_ADDRESS);
      const word = sourceWord(list, window);
      const headline =
        list.length === 1 ? `${word} ${addresses[0]} fails` : `${list.length} ${word}s fail`;
      const delivered =
        p === 'none'
          ? `Under p=none receivers deliver this mail as if it were yours.`
          : `Your policy p=${p} asks receivers to ${p} it.`;
      findings.push({
        key: `new-failing-source:${domain}`,
        rule: 'new-failing-source',
        domain,
        service: null,
        severity: p === 'none' ? 'warning' : 'info',
        title: `${domain}: ${headline} DMARC (${formatCount(messages)} messages, likely spoofing)`,
        summary:
          `${listSome(addresses)} sent ${formatCount(messages)} messages From ` +
          `${listSome([...new Set(list.flatMap((s) => s.headerFrom))])} in the last ` +
          `${settings.windowDays} days that failed DMARC, and no catalog service claims ` +
          `${list.length === 1 ? 'it' : 'them'}. ${delivered}`,
        facts: [
          ['Failing messages', formatCount(messages)],
          ['Sources', String(list.length)],
          ['Published policy', `p=${p}`],
          ['Report days', `${window.from} to ${window.to}`],
        ],
        table: sourceTable(list, 'failing'),
        cause:
          'Servers outside the catalog send in your name without a DKIM signature or SPF pass ' +
          'aligned with your domain: spoofing, a forwarder or mailing list that breaks ' +
          'authentication, or one of your own senders missing from the catalog.',
        fix:
          p === 'reject'
            ? 'Nothing to change if these are not yours: p=reject already tells receivers to reject them. If one is yours, add it to the service catalog and make it sign with DKIM under your domain.'
            : 'If a source is yours, add it to the service catalog and make it sign with DKIM under your domain. If not, move the domain to p=quarantine, then p=reject, once your own services pass (the policy-step alert says when).',
        link: sourcesLink(domain, list, window, 'fail'),
        level: messages,
        members: addresses,
        extraRecipients: [],
      });
    }
    return { findings };
  },

  isWorse(sent, finding) {
    return hasNewMembers(sent.members, finding);
  },
};

export const newPassingSource: AlertRuleDefinition<'new-passing-source'> = {
  id: 'new-passing-source',
  name: 'Unlisted sender passing DMARC',
  description:
    'A source that no catalog service claims sends mail that passes DMARC: a legitimate sender missing from the catalog.',

  async evaluate(context, settings) {
    const window = recentWindow(context.now, settings.windowDays);
    const sources = await findUnattributedSources(context.pool, window.from, window.to);
    const passing = sources
      .filter((source) => source.passMessages >= settings.minMessages)
      .sort((a, b) => b.passMessages - a.passMessages);
    const findings: Finding[] = [];
    for (const [domain, list] of groupByDomain(passing)) {
      const messages = list.reduce((sum, s) => sum + s.passMessages, 0);
      const addresses = list.map((source) => source.sourceIp ?? NO_ADDRESS);
      const providers = [
        ...new Set(
          list.flatMap((source) => source.providers).map((id) => getProvider(id)?.name ?? id),
        ),
      ];
      const via = providers.length > 0 ? ` (via ${providers.join(', ')})` : '';
      const word = sourceWord(list, window);
      const headline =
        list.length === 1
          ? `${word} ${addresses[0]}${via} passes`
          : `${list.length} ${word}s${via} pass`;
      findings.push({
        key: `new-passing-source:${domain}`,
        rule: 'new-passing-source',
        domain,
        service: null,
        severity: 'info',
        title: `${domain}: ${headline} DMARC but no catalog service claims ${list.length === 1 ? 'it' : 'them'}`,
        summary:
          `${listSome(addresses)} sent ${formatCount(messages)} messages From ` +
          `${listSome([...new Set(list.flatMap((s) => s.headerFrom))])} in the last ` +
          `${settings.windowDays} days that passed DMARC, so they hold a DKIM key or SPF entry ` +
          `of yours, but no service in the catalog claims them.`,
        facts: [
          ['Passing messages', formatCount(messages)],
          ['Sources', String(list.length)],
          ['Report days', `${window.from} to ${window.to}`],
        ],
        table: sourceTable(list, 'passing'),
        cause:
          'Someone set up a sender with your DKIM key or SPF record (a SaaS tool, a new ' +
          'microservice, a provider account) without adding it to the service catalog.',
        fix:
          'Add a service for it to the catalog (an ip, dkim or provider rule), so that its ' +
          'failures are attributed and alert its owner. If nobody recognises it, remove the ' +
          'DKIM key or SPF include that lets it pass.',
        link: sourcesLink(domain, list, window, 'pass'),
        level: messages,
        members: addresses,
        extraRecipients: [],
      });
    }
    return { findings };
  },

  isWorse(sent, finding) {
    return hasNewMembers(sent.members, finding);
  },
};

export const unattributedSpike: AlertRuleDefinition<'unattributed-spike'> = {
  id: 'unattributed-spike',
  name: 'Spike of failing unattributed mail',
  description:
    'Failing mail from unattributed sources on one day reaches a multiple of its daily average.',

  async evaluate(context, settings) {
    const recent = recentWindow(context.now, settings.windowDays);
    const baselineTo = addDays(recent.from, -1);
    const baselineFrom = addDays(recent.from, -settings.baselineDays);
    const [days, reportDays] = await Promise.all([
      findUnattributedFailingByDay(context.pool, baselineFrom, recent.to),
      findDomainReportDays(context.pool, baselineFrom, baselineTo),
    ]);

    const byDomain = new Map<string, { baseline: number; peak: number; peakDay: string }>();
    for (const row of days) {
      const entry = byDomain.get(row.domain) ?? { baseline: 0, peak: 0, peakDay: '' };
      if (row.day < recent.from) entry.baseline += row.failing;
      else if (row.failing > entry.peak)
        Object.assign(entry, { peak: row.failing, peakDay: row.day });
      byDomain.set(row.domain, entry);
    }

    const findings: Finding[] = [];
    const cleared = new Map<string, string>();
    for (const [domain, entry] of byDomain) {
      const historyDays = reportDays.get(domain) ?? 0;
      // A domain without reports in the baseline has no average to compare with; the new
      // source rule covers its first senders.
      if (historyDays === 0) continue;
      const average = entry.baseline / historyDays;
      const key = `unattributed-spike:${domain}`;
      if (entry.peak < settings.minMessages || entry.peak < settings.factor * average) {
        cleared.set(
          key,
          `${domain}: failing unattributed mail is back to ${formatCount(entry.peak)} messages a day at most (average ${formatCount(average)})`,
        );
        continue;
      }
      const ratio = average > 0 ? `${(entry.peak / average).toFixed(1)}×` : 'up from none';
      const top = await findUnattributedSources(context.pool, entry.peakDay, entry.peakDay);
      const failingTop = top
        .filter((source) => source.domain === domain && source.messages > source.passMessages)
        .slice(0, 10);
      findings.push({
        key,
        rule: 'unattributed-spike',
        domain,
        service: null,
        severity: 'warning',
        title:
          `${domain}: failing mail from unattributed sources jumped to ` +
          `${formatCount(entry.peak)} messages on ${entry.peakDay} (${ratio} the daily average of ${formatCount(average)})`,
        summary:
          `On ${entry.peakDay}, ${formatCount(entry.peak)} messages From ${domain} failed DMARC ` +
          `and came from sources no catalog service claims; over the ${settings.baselineDays} ` +
          `days before, the average was ${formatCount(average)} a day.`,
        facts: [
          ['Failing messages on the peak day', formatCount(entry.peak)],
          ['Daily average before', formatCount(average)],
          [
            'Alert at',
            `${settings.factor}× the average and at least ${formatCount(settings.minMessages)}`,
          ],
          ['Baseline report days', `${baselineFrom} to ${baselineTo}`],
        ],
        table: sourceTable(failingTop, 'failing'),
        cause:
          'A spoofing or phishing campaign in your name, or one of your senders that lost its ' +
          'catalog entry or its DKIM or SPF setup.',
        fix:
          'Check the sources below. If they are not yours, p=quarantine or p=reject stops ' +
          'receivers from delivering them; if one is yours, add it to the catalog and fix its ' +
          'DKIM or SPF.',
        link: {
          path: '/sources',
          params: { range: 'custom', from: recent.from, to: recent.to, domain, result: 'fail' },
        },
        level: entry.peak,
        members: [],
        extraRecipients: [],
      });
    }
    return { findings, cleared };
  },

  isWorse(sent, finding, settings) {
    return sent.level === null || finding.level >= sent.level * settings.worseFactor;
  },
};
