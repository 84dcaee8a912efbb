import pino, { type Logger } from 'pino';

/**
 * The process logger: JSON lines on stderr, so that stdout stays free for exports.
 * Secrets are redacted wherever they appear under these keys.
 */
export function createLogger(level = 'info'): Logger {
  return pino(
    {
      level,
      redact: ['password', '*.password', 'auth.pass', 'config.imap.password', 'token'],
      base: { app: 'dmarc-lens' },
    },
    pino.destination(2),
  );
}
