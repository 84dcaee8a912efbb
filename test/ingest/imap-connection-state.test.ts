import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ImapPollError, pollOnce, type ImapPollerConfig } from '../../src/ingest/imap-poller.js';
import { isDovecotInstalled, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { isCI } from '../helpers/database.js';

// startDovecot throws in CI when Dovecot is missing, so the suite fails there instead of skipping.
const runImapTests = isDovecotInstalled() || isCI;

describe.skipIf(!runImapTests)('IMAP connection state', () => {
  let server: DovecotServer;

  beforeAll(async () => {
    server = await startDovecot();
  });

  afterAll(async () => {
    await server?.stop();
  });

  function config(password: string): ImapPollerConfig {
    return {
      host: server.host,
      port: server.port,
      secure: false,
      user: server.user,
      password,
      doneMailbox: 'done',
      failedMailbox: 'failed',
      retryInitialMs: 50,
    };
  }

  it('reports a connection and a failed login', async () => {
    const states: Array<{ connected: boolean }> = [];
    const deps = {
      logger: pino({ level: 'silent' }),
      ingest: () => Promise.reject(new Error('no messages expected')),
      onConnection: (state: { connected: boolean }) => states.push(state),
    };

    await pollOnce(config(server.password), deps);
    await expect(pollOnce(config('wrong-password'), deps)).rejects.toBeInstanceOf(ImapPollError);

    expect(states.map((state) => state.connected)).toEqual([true, false]);
  });
});
