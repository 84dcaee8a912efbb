import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import {
  AlertSettingsError,
  digestSubscriptions,
  loadAlertSettings,
  parseAlertSettings,
  resolveRuleSettings,
} from '../../src/notify/settings.js';

describe('alert settings', () => {
  it('applies defaults without a file', () => {
    const settings = loadAlertSettings(undefined);
    expect(settings.scheduleMinutes).toBe(15);
    expect(settings.retryMinutes).toEqual([1, 5, 30, 120]);
    expect(settings.digests).toBeNull();
    expect(resolveRuleSettings('service-pass-rate', undefined, undefined)).toMatchObject({
      enabled: true,
      recipients: [],
      threshold: 98,
      windowDays: 3,
      baselineDays: 28,
      cooldownHours: 24,
    });
  });

  it('reads YAML and JSON files', () => {
    const yaml = parseAlertSettings(
      [
        'rules:',
        '  service-pass-rate:',
        '    threshold: 95',
        '    recipients: [mail-ops@example.com]',
        '  unattributed-spike: { enabled: false }',
        'digests:',
        '  - to: [a@example.com, B@example.com]',
        '    every: weekly',
        '    weekday: friday',
        '    hour: 16',
      ].join('\n'),
    );
    expect(
      resolveRuleSettings('service-pass-rate', yaml.rules['service-pass-rate'], {}),
    ).toMatchObject({ threshold: 95, recipients: ['mail-ops@example.com'], windowDays: 3 });
    expect(yaml.digests).toEqual([
      { recipient: 'a@example.com', every: 'weekly', hour: 16, weekday: 5 },
      { recipient: 'b@example.com', every: 'weekly', hour: 16, weekday: 5 },
    ]);

    const json = parseAlertSettings('{"rules": {"nothing-ingested": {"hours": 48}}}');
    expect(
      resolveRuleSettings('nothing-ingested', json.rules['nothing-ingested'], {}),
    ).toMatchObject({
      hours: 48,
    });
  });

  it('lets dashboard edits override the file', () => {
    const file = parseAlertSettings(
      'rules:\n  service-pass-rate: { threshold: 95, windowDays: 5 }\n',
    );
    const settings = resolveRuleSettings('service-pass-rate', file.rules['service-pass-rate'], {
      threshold: 90,
    });
    expect(settings.threshold).toBe(90);
    expect(settings.windowDays).toBe(5);
  });

  it('defaults to weekly digests for ALERT_TO', () => {
    const none = parseAlertSettings('{}');
    expect(digestSubscriptions(none, ['secops@example.com'])).toEqual([
      { recipient: 'secops@example.com', every: 'weekly', hour: 7, weekday: 1 },
    ]);
    const off = parseAlertSettings('digests: []\n');
    expect(digestSubscriptions(off, ['secops@example.com'])).toEqual([]);
  });

  it.each([
    ['rules: [', /^Invalid ALERT_RULES_FILE: /],
    [
      'rules:\n  no-such-rule: {}\n',
      /^Invalid ALERT_RULES_FILE: rules\.no-such-rule: unknown rule; expected one of new-failing-source, /,
    ],
    [
      'rules:\n  service-pass-rate: { threshold: 120 }\n',
      /^Invalid ALERT_RULES_FILE: rules\.service-pass-rate\.threshold: /,
    ],
    [
      'rules:\n  service-pass-rate: { treshold: 90 }\n',
      /^Invalid ALERT_RULES_FILE: rules\.service-pass-rate: .*treshold/,
    ],
    [
      'rules:\n  new-failing-source: { recipients: [not-an-address] }\n',
      /^Invalid ALERT_RULES_FILE: rules\.new-failing-source\.recipients\.0: expected an e-mail address/,
    ],
    [
      'rules:\n  recommendation-change: { kinds: [fix-everything] }\n',
      /^Invalid ALERT_RULES_FILE: rules\.recommendation-change\.kinds\.0: /,
    ],
    [
      'digests:\n  - { to: a@example.com, every: hourly }\n',
      /^Invalid ALERT_RULES_FILE: digests\.0\.every: /,
    ],
    ['retryMinutes: [0]\n', /^Invalid ALERT_RULES_FILE: retryMinutes\.0: /],
  ])('rejects %j naming the setting', (text, message) => {
    expect(() => parseAlertSettings(text)).toThrow(AlertSettingsError);
    expect(() => parseAlertSettings(text)).toThrow(message);
  });

  it('names a file that cannot be read', () => {
    const missing = path.join(os.tmpdir(), 'dmarc-lens-no-such-alerts.yaml');
    expect(fs.existsSync(missing)).toBe(false);
    expect(() => loadAlertSettings(missing)).toThrow(
      `Cannot read ALERT_RULES_FILE ${missing}: ENOENT`,
    );
  });
});
