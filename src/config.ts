import fs from 'node:fs';
import { z } from 'zod';

import { DEFAULT_LIMITS, type ParseLimits } from './parse/limits.js';

export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  host: string;
  port: number;
  publicUrl: string;
  /** DOMAINS: the domains the team owns; reports about others are kept as foreign. */
  ownedDomains: string[];
  imap: ImapConfig | null;
  watchDir: string | undefined;
  servicesFile: string | undefined;
  /** REVERSE_DNS: `off`, `system` (`on`: the operating system's resolvers) or DNS servers. */
  reverseDns: 'off' | 'system' | string[];
  /** REVERSE_DNS_TIMEOUT_MS: deadline of one address's lookup, PTR and forward queries together. */
  reverseDnsTimeoutMs: number;
  smtpUrl: string | undefined;
  alertFrom: string | undefined;
  alertTo: string[];
  /** ALERT_RULES_FILE: YAML or JSON with alert rule settings and digests; defaults apply without it. */
  alertRulesFile: string | undefined;
  adminPassword: string | undefined;
  /**
   * TRUST_PROXY: Express's `trust proxy` setting, so that login rate limits see the client's
   * address behind a reverse proxy. False (the default) uses the socket address.
   */
  trustProxy: boolean | number | string;
  logLevel: string;
  limits: ParseLimits;
  /** Months of records kept; older monthly partitions are dropped. 0 keeps everything. */
  retentionMonths: number;
}

export interface ImapConfig {
  host: string;
  port: number;
  secure: boolean;
  user: string;
  password: string;
  mailbox: string;
  doneMailbox: string;
  failedMailbox: string;
  /** Seconds between polls when the server has no IDLE. */
  pollSeconds: number;
}

/** A setting that is wrong or missing; the message names the setting and the problem. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const domainList = z
  .string()
  .transform((value) =>
    value
      .split(/[\s,]+/)
      .map((domain) => domain.trim().toLowerCase().replace(/\.+$/, ''))
      .filter((domain) => domain !== ''),
  )
  .refine(
    (domains) => domains.every((domain) => /^[a-z0-9.-]+$/.test(domain) && domain.includes('.')),
    {
      message: 'expected comma-separated domain names such as example.com,example.org',
    },
  );

const boolean = z
  .string()
  .transform((value) => value.trim().toLowerCase())
  .refine((value) => ['true', 'false', '1', '0', 'yes', 'no'].includes(value), {
    message: 'expected true or false',
  })
  .transform((value) => ['true', '1', 'yes'].includes(value));

const port = z.coerce
  .number({ message: 'expected an integer from 0 to 65535' })
  .int({ message: 'expected an integer from 0 to 65535' })
  .min(0, { message: 'expected an integer from 0 to 65535' })
  .max(65535, { message: 'expected an integer from 0 to 65535' });
const positiveInteger = z.coerce.number().int().positive();

const environment = z.object({
  DATABASE_URL: z
    .string()
    .refine((value) => /^postgres(ql)?:\/\//.test(value), {
      message: 'expected a URL starting with postgres:// or postgresql://',
    })
    .optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(8080),
  PUBLIC_URL: z
    .url({ message: 'expected an absolute URL such as https://dmarc.example.com' })
    .optional(),
  DOMAINS: domainList.optional(),
  IMAP_HOST: z.string().min(1).optional(),
  IMAP_PORT: port.optional(),
  IMAP_TLS: boolean.optional(),
  IMAP_USER: z.string().min(1).optional(),
  IMAP_PASSWORD: z.string().min(1).optional(),
  IMAP_MAILBOX: z.string().min(1).default('INBOX'),
  IMAP_DONE_MAILBOX: z.string().min(1).default('dmarc-lens/done'),
  IMAP_FAILED_MAILBOX: z.string().min(1).default('dmarc-lens/failed'),
  IMAP_POLL_SECONDS: positiveInteger.default(60),
  WATCH_DIR: z.string().min(1).optional(),
  SERVICES_FILE: z.string().min(1).optional(),
  // Off unless asked for: lookups send every source address of every report to a DNS server.
  REVERSE_DNS: z
    .string()
    .transform((value) => value.trim().toLowerCase())
    .refine(
      (value) =>
        ['off', 'on', 'system'].includes(value) ||
        value
          .split(',')
          .every((server) => /^(\[[0-9a-f:.]+\]|[0-9.]+)(:\d{1,5})?$/.test(server.trim())),
      {
        message:
          'expected off, on (the system resolvers) or DNS servers such as 127.0.0.1:53,[::1]:53',
      },
    )
    .default('off'),
  REVERSE_DNS_TIMEOUT_MS: positiveInteger.default(2000),
  SMTP_URL: z
    .string()
    .refine((value) => /^smtps?:\/\//.test(value), { message: 'expected smtp:// or smtps:// URL' })
    .optional(),
  ALERT_FROM: z.string().min(3).optional(),
  ALERT_TO: z.string().optional(),
  ALERT_RULES_FILE: z.string().min(1).optional(),
  ADMIN_PASSWORD: z.string().min(12, { message: 'must be at least 12 characters' }).optional(),
  TRUST_PROXY: z
    .string()
    .refine(
      (value) => /^(true|false|\d+|[0-9a-fA-F:.,/\s]+|loopback|linklocal|uniquelocal)$/.test(value),
      {
        message:
          'expected false, true, a hop count, or addresses/subnets such as loopback,10.0.0.0/8',
      },
    )
    .optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  RETENTION_MONTHS: z.coerce.number().int().min(0).default(0),
  MAX_INPUT_BYTES: positiveInteger.default(DEFAULT_LIMITS.maxInputBytes),
  MAX_DECOMPRESSED_BYTES: positiveInteger.default(DEFAULT_LIMITS.maxDecompressedBytes),
  MAX_COMPRESSION_RATIO: positiveInteger.default(DEFAULT_LIMITS.maxCompressionRatio),
  MAX_ATTACHMENTS: positiveInteger.default(DEFAULT_LIMITS.maxAttachments),
  MAX_CONTAINER_DEPTH: positiveInteger.default(DEFAULT_LIMITS.maxContainerDepth),
  MAX_XML_DEPTH: positiveInteger.default(DEFAULT_LIMITS.maxXmlDepth),
  MAX_RECORDS_PER_REPORT: positiveInteger.default(DEFAULT_LIMITS.maxRecordsPerReport),
  MAX_VALUE_LENGTH: positiveInteger.default(DEFAULT_LIMITS.maxValueLength),
});

const SECRET_SETTINGS = new Set(['ADMIN_PASSWORD', 'IMAP_PASSWORD']);

/** A setting's value as error messages may show it: secrets hidden, URL passwords masked. */
export function displayValue(name: string, value: string): string {
  if (SECRET_SETTINGS.has(name)) return '***';
  return maskUrlPassword(value);
}

/** Replaces the password of a URL such as postgres://user:secret@host/db with ***. */
export function maskUrlPassword(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/i, '$1***@');
}

/** Reads KEY=value lines from a `.env` file into the environment, without overriding it. */
export function loadDotEnv(file = '.env', env: NodeJS.ProcessEnv = process.env): void {
  if (!fs.existsSync(file)) return;
  for (const line of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    const match = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith('#')) continue;
    const value = match[2].replace(/^(['"])(.*)\1$/, '$2');
    if (env[match[1]] === undefined) env[match[1]] = value;
  }
}

/**
 * Builds the configuration from environment variables.
 * @throws ConfigError naming the first wrong or missing setting
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty variables count as unset, as docker-compose passes them for unset substitutions.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = environment.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0]);
    throw new ConfigError(
      `Invalid ${name}=${JSON.stringify(displayValue(name, present[name] ?? ''))}: ${issue.message}`,
    );
  }
  const values = parsed.data;

  let imap: ImapConfig | null = null;
  if (values.IMAP_HOST) {
    for (const required of ['IMAP_USER', 'IMAP_PASSWORD'] as const) {
      if (!values[required])
        throw new ConfigError(`Missing ${required}: required when IMAP_HOST is set`);
    }
    const secure = values.IMAP_TLS ?? true;
    imap = {
      host: values.IMAP_HOST,
      port: values.IMAP_PORT ?? (secure ? 993 : 143),
      secure,
      user: values.IMAP_USER!,
      password: values.IMAP_PASSWORD!,
      mailbox: values.IMAP_MAILBOX,
      doneMailbox: values.IMAP_DONE_MAILBOX,
      failedMailbox: values.IMAP_FAILED_MAILBOX,
      pollSeconds: values.IMAP_POLL_SECONDS,
    };
  }

  const alertTo = (values.ALERT_TO ?? '')
    .split(',')
    .map((address) => address.trim())
    .filter((address) => address !== '');
  for (const address of alertTo) {
    if (!/^[^@\s]+@[^@\s]+$/.test(address)) {
      throw new ConfigError(
        `Invalid ALERT_TO: ${JSON.stringify(address)} is not an e-mail address`,
      );
    }
  }

  return {
    databaseUrl: values.DATABASE_URL,
    dataDir: values.DATA_DIR,
    host: values.HOST,
    port: values.PORT,
    publicUrl: (values.PUBLIC_URL ?? `http://${values.HOST}:${values.PORT}`).replace(/\/+$/, ''),
    ownedDomains: values.DOMAINS ?? [],
    imap,
    watchDir: values.WATCH_DIR,
    servicesFile: values.SERVICES_FILE,
    reverseDns:
      values.REVERSE_DNS === 'off'
        ? 'off'
        : values.REVERSE_DNS === 'on' || values.REVERSE_DNS === 'system'
          ? 'system'
          : values.REVERSE_DNS.split(',').map((server) => server.trim()),
    reverseDnsTimeoutMs: values.REVERSE_DNS_TIMEOUT_MS,
    smtpUrl: values.SMTP_URL,
    alertFrom: values.ALERT_FROM,
    alertTo,
    alertRulesFile: values.ALERT_RULES_FILE,
    adminPassword: values.ADMIN_PASSWORD,
    trustProxy: parseTrustProxy(values.TRUST_PROXY),
    logLevel: values.LOG_LEVEL,
    retentionMonths: values.RETENTION_MONTHS,
    limits: {
      maxInputBytes: values.MAX_INPUT_BYTES,
      maxDecompressedBytes: values.MAX_DECOMPRESSED_BYTES,
      maxCompressionRatio: values.MAX_COMPRESSION_RATIO,
      maxAttachments: values.MAX_ATTACHMENTS,
      maxContainerDepth: values.MAX_CONTAINER_DEPTH,
      maxXmlDepth: values.MAX_XML_DEPTH,
      maxRecordsPerReport: values.MAX_RECORDS_PER_REPORT,
      maxValueLength: values.MAX_VALUE_LENGTH,
      maxKeptElements: DEFAULT_LIMITS.maxKeptElements,
      maxRecordsBeforeHeader: DEFAULT_LIMITS.maxRecordsBeforeHeader,
    },
  };
}

function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}
