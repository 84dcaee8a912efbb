import { describe, expect, it } from 'vitest';

import { ConfigError, loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('uses defaults with an empty environment', () => {
    const config = loadConfig({});

    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe('./data');
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8080);
    expect(config.ownedDomains).toEqual([]);
    expect(config.imap).toBeNull();
    expect(config.trustProxy).toBe(false);
  });

  it.each([
    [{ PORT: 'eighty' }, /^Invalid PORT="eighty"/],
    [{ DATABASE_URL: 'mysql://x' }, /^Invalid DATABASE_URL="mysql:\/\/x": expected a URL/],
    [{ DOMAINS: 'example.com,not a domain' }, /^Invalid DOMAINS=/],
    [{ IMAP_HOST: 'imap.example.com' }, /^Missing IMAP_USER: required when IMAP_HOST is set$/],
    [{ IMAP_TLS: 'maybe' }, /^Invalid IMAP_TLS="maybe": expected true or false$/],
    [{ ADMIN_PASSWORD: 'short' }, /^Invalid ADMIN_PASSWORD=.*at least 12 characters$/],
    [
      { ALERT_TO: 'ops@example.com, nobody' },
      /^Invalid ALERT_TO: "nobody" is not an e-mail address$/,
    ],
    [{ TRUST_PROXY: 'sometimes' }, /^Invalid TRUST_PROXY=/],
  ])('rejects %o with one line naming the setting', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('normalizes DOMAINS', () => {
    const config = loadConfig({ DOMAINS: ' Example.COM., example.org ' });

    expect(config.ownedDomains).toEqual(['example.com', 'example.org']);
  });

  it('reads the IMAP settings', () => {
    const config = loadConfig({
      IMAP_HOST: 'imap.example.com',
      IMAP_USER: 'reports@example.com',
      IMAP_PASSWORD: 'secret',
      IMAP_TLS: 'false',
    });

    expect(config.imap).toMatchObject({
      host: 'imap.example.com',
      port: 143,
      secure: false,
      mailbox: 'INBOX',
    });
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).port).toBe(8080);
  });

  it('parses TRUST_PROXY', () => {
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: 'loopback' }).trustProxy).toBe('loopback');
  });
});

describe('configuration errors', () => {
  it('hides secrets in error messages', () => {
    expect(() => loadConfig({ ADMIN_PASSWORD: 'short' })).toThrow('Invalid ADMIN_PASSWORD="***"');
    expect(() => loadConfig({ SMTP_URL: 'ftp://alice:hunter2@mail.example' })).toThrow(
      'Invalid SMTP_URL="ftp://alice:***@mail.example"',
    );
  });
});
