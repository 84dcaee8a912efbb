/**
 * Rules about reports arriving: a reporter that reported daily and went silent, nothing
 * received at all, inputs in quarantine, and an IMAP mailbox that cannot be reached.
 */
import {
  findLastInputReceived,
  findMailboxStatuses,
  findProblemInputs,
  findReporterDays,
} from '../../store/alerts.js';
import { formatCount, type Finding } from '../alert.js';
import {
  addDays,
  daysSince,
  hasNewMembers,
  listSome,
  utcDay,
  type AlertRuleDefinition,
} from './context.js';

const HOUR_MS = 3_600_000;

export const reporterSilent: AlertRuleDefinition<'reporter-silent'> = {
  id: 'reporter-silent',
  name: 'Reporter went silent',
  description: 'A reporter that sent reports almost every day has sent none for some days.',

  async evaluate(context, settings) {
    const today = utcDay(context.now);
    // Reports about a day arrive during the next, so the silent window ends today.
    const silentFrom = addDays(today, -settings.silentDays);
    const baselineTo = addDays(silentFrom, -1);
    const baselineFrom = addDays(silentFrom, -settings.baselineDays);
    const reporters = await findReporterDays(context.pool, baselineFrom, baselineTo, today);
    const findings: Finding[] = [];
    const cleared = new Map<string, string>();

    for (const reporter of reporters) {
      const key = `reporter-silent:${reporter.reporterOrg.toLowerCase()}`;
      if (reporter.lastDay >= silentFrom) {
        cleared.set(
          key,
          `${listSome(reporter.domains)}: ${reporter.reporterOrg} reports again (latest report day ${reporter.lastDay})`,
        );
        continue;
      }
      if (reporter.baselineDays < settings.minReportDays) continue;
      const silentDays = daysSince(new Date(`${reporter.lastDay}T00:00:00Z`), context.now);
      findings.push({
        key,
        rule: 'reporter-silent',
        domain: reporter.domains.length === 1 ? reporter.domains[0] : null,
        service: null,
        severity: 'warning',
        title: `${listSome(reporter.domains)}: no reports from ${reporter.reporterOrg} since ${reporter.lastDay}`,
        summary:
          `${reporter.reporterOrg} sent reports on ${reporter.baselineDays} of the ` +
          `${settings.baselineDays} days from ${baselineFrom} to ${baselineTo}, but none about ` +
          `any day after ${reporter.lastDay}.`,
        facts: [
          ['Latest report day', reporter.lastDay],
          ['Days since', String(silentDays)],
          ['Report days in the baseline', `${reporter.baselineDays} of ${settings.baselineDays}`],
          ['Domains', reporter.domains.join(', ')],
        ],
        cause:
          'Reports are no longer reaching the mailbox or folder dmarc-lens reads: a changed rua ' +
          'address or DMARC record, a full or filtered mailbox, an IMAP problem, or the reporter ' +
          'stopped sending them.',
        fix:
          'Check that the DMARC record still lists the rua address, that the mailbox receives ' +
          'mail from the reporter (spam folder, size limits), and the ingestion health in the ' +
          'dashboard.',
        link: {
          path: '/reports',
          params: {
            range: 'custom',
            from: baselineFrom,
            to: today,
            reporter: reporter.reporterOrg,
          },
        },
        level: silentDays,
        members: [],
        extraRecipients: [],
      });
    }
    return { findings, cleared };
  },

  isWorse() {
    return false;
  },
};

export const nothingIngested: AlertRuleDefinition<'nothing-ingested'> = {
  id: 'nothing-ingested',
  name: 'Nothing received',
  description: 'No report input (mail, file or upload) has been received for some hours.',

  async evaluate(context, settings) {
    const last = await findLastInputReceived(context.pool);
    // A new installation that never received anything is not an outage.
    if (last === null) return { findings: [] };
    const hours = (context.now.getTime() - last.getTime()) / HOUR_MS;
    const key = 'nothing-ingested';
    if (hours < settings.hours) {
      return {
        findings: [],
        cleared: new Map([
          [key, `All domains: report inputs arrive again (latest ${last.toISOString()})`],
        ]),
      };
    }
    const finding: Finding = {
      key,
      rule: 'nothing-ingested',
      domain: null,
      service: null,
      severity: 'warning',
      title: `All domains: no report input received for ${Math.floor(hours)} hours (since ${last.toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
      summary:
        `The latest report input arrived at ${last.toISOString()}. Receivers send aggregate ` +
        `reports daily, so a full day without any input means the intake is broken.`,
      facts: [
        ['Latest input', last.toISOString()],
        ['Hours since', formatCount(hours)],
        ['Alert after', `${settings.hours} hours`],
      ],
      cause:
        'The IMAP poller or folder watcher is not running or cannot reach its mailbox or folder, ' +
        'or the rua address no longer receives reports.',
      fix:
        'Check the service log for IMAP or folder errors, that IMAP_* or WATCH_DIR are set, and ' +
        'that the rua address in your DMARC records still delivers to that mailbox.',
      link: { path: '/reports', params: {} },
      level: hours,
      members: [],
      extraRecipients: [],
    };
    return { findings: [finding] };
  },

  isWorse() {
    return false;
  },
};

export const quarantinedInputs: AlertRuleDefinition<'quarantined-inputs'> = {
  id: 'quarantined-inputs',
  name: 'Quarantined inputs',
  description: 'Inputs could not be read, in whole or in part, and wait in the quarantine.',

  async evaluate(context, settings) {
    const inputs = await findProblemInputs(context.pool);
    if (inputs.length < settings.minInputs) {
      return {
        findings: [],
        cleared: new Map([['quarantined-inputs', 'Ingestion: the quarantine is empty']]),
      };
    }
    const quarantined = inputs.filter((input) => input.status === 'quarantined').length;
    const partial = inputs.length - quarantined;
    const codes = [...new Set(inputs.map((input) => input.errorCode ?? 'unknown'))];
    const finding: Finding = {
      key: 'quarantined-inputs',
      rule: 'quarantined-inputs',
      domain: null,
      service: null,
      severity: 'warning',
      title:
        `Ingestion: ${inputs.length} ${inputs.length === 1 ? 'input' : 'inputs'} in quarantine ` +
        `(${quarantined} unreadable, ${partial} partly read)`,
      summary:
        `${inputs.length} received ${inputs.length === 1 ? 'input' : 'inputs'} could not be ` +
        `read in full; the reports in them are not in the numbers. Errors: ${listSome(codes, 5)}.`,
      facts: [
        ['Unreadable', String(quarantined)],
        ['Partly read', String(partial)],
        ['Oldest', inputs[0].receivedAt.toISOString()],
      ],
      table: {
        caption: 'Inputs',
        columns: ['Id', 'Name', 'Source', 'Status', 'Error', 'Received'],
        rows: inputs
          .slice(-20)
          .reverse()
          .map((input) => [
            String(input.id),
            input.name,
            input.source,
            input.status,
            input.errorMessage ?? input.errorCode ?? '',
            input.receivedAt.toISOString(),
          ]),
      },
      cause:
        'Broken or truncated attachments, an unsupported format or encoding, or a size limit ' +
        '(MAX_INPUT_BYTES and the other MAX_* settings).',
      fix:
        'Open the quarantine, read the error of each input, and run `dmarc-lens reprocess` once ' +
        'the cause is fixed (for example after raising a limit).',
      link: { path: '/quarantine', params: {} },
      level: inputs.length,
      members: inputs.map((input) => String(input.id)),
      extraRecipients: [],
    };
    return { findings: [finding] };
  },

  isWorse(sent, finding) {
    return hasNewMembers(sent.members, finding);
  },
};

export const imapConnection: AlertRuleDefinition<'imap-connection'> = {
  id: 'imap-connection',
  name: 'IMAP connection failing',
  description: 'Connecting to the IMAP mailbox has failed for longer than a threshold.',

  async evaluate(context, settings) {
    const statuses = await findMailboxStatuses(context.pool);
    const findings: Finding[] = [];
    const cleared = new Map<string, string>();
    for (const status of statuses) {
      const key = `imap-connection:${status.mailbox}`;
      const minutes = status.failingSince
        ? (context.now.getTime() - status.failingSince.getTime()) / 60_000
        : 0;
      if (!status.failingSince || minutes < settings.minutes) {
        if (status.lastConnectedAt) {
          cleared.set(
            key,
            `Ingestion: IMAP ${status.mailbox} connected at ${status.lastConnectedAt.toISOString()}`,
          );
        }
        continue;
      }
      findings.push({
        key,
        rule: 'imap-connection',
        domain: null,
        service: null,
        severity: 'critical',
        title: `Ingestion: IMAP ${status.mailbox} has failed to connect for ${formatCount(minutes)} minutes`,
        summary:
          `${status.failures} connection attempts to ${status.mailbox} failed since ` +
          `${status.failingSince.toISOString()}; no reports are read meanwhile. Last error: ` +
          `${status.lastError ?? 'unknown'}.`,
        facts: [
          ['Failing since', status.failingSince.toISOString()],
          ['Failed attempts', String(status.failures)],
          ['Last connected', status.lastConnectedAt?.toISOString() ?? 'never'],
          ['Last error', status.lastError ?? 'unknown'],
        ],
        cause:
          'The IMAP server is down or unreachable, the password changed or expired, or TLS ' +
          'settings do not match the server.',
        fix: 'Check IMAP_HOST, IMAP_PORT, IMAP_TLS, IMAP_USER and IMAP_PASSWORD, and log in to the mailbox by hand.',
        link: { path: '/settings', params: {} },
        level: minutes,
        members: [],
        extraRecipients: [],
      });
    }
    return { findings, cleared };
  },

  isWorse() {
    return false;
  },
};
