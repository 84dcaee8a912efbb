/** The sample alert that `dmarc-lens alerts test` sends to check the SMTP settings. */
import type { Finding } from './alert.js';
import { addDays, utcDay } from './rules/context.js';

/** Builds a made-up service pass-rate alert, marked as a test in its title and summary. */
export function sampleFinding(now: Date): Finding {
  const to = utcDay(now);
  const from = addDays(to, -3);
  return {
    key: 'test',
    rule: 'service-pass-rate',
    domain: 'example.com',
    service: 'password-resets',
    severity: 'warning',
    title: 'Test alert: example.com: password-resets DMARC pass rate fell to 41% (threshold 98%)',
    summary:
      'This is a test message from dmarc-lens: the numbers below are made up. If you can read ' +
      'it, SMTP_URL, ALERT_FROM and ALERT_TO work.',
    facts: [
      ['Pass rate', '41%'],
      ['Threshold', '98%'],
      ['Messages', '1,200'],
      ['Failing messages', '708'],
    ],
    cause: 'DKIM signed with the provider’s domain instead of ours (made up for this test)',
    fix: 'Nothing to fix: this is a test.',
    link: { path: '/services', params: { range: 'custom', from, to, domain: 'example.com' } },
    level: 0,
    members: [],
    extraRecipients: [],
  };
}
