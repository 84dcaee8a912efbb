import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { alertsRouter } from '../../src/serve/api/alerts-router.js';
import { createApp } from '../../src/serve/app.js';
import {
  openTestRuntime,
  postgresAvailable,
  silentLog,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';
import { closedPort } from '../helpers/smtp.js';
import { ADMIN_PASSWORD, logIn, sessionHeaders, type Session } from '../serve/harness.js';
import {
  daysUpTo,
  ingestDays,
  onlyRule,
  PUBLIC_URL,
  setCatalog,
  testAlerting,
  TestClock,
} from './history.js';

const kind: DatabaseKind = (await postgresAvailable()) ? 'postgres' : 'pglite';

describe('alerts API', () => {
  let runtime: TestRuntime;
  let server: Server;
  let baseUrl: string;
  let admin: Session;
  let viewer: Session;
  const clock = new TestClock(new Date('2025-03-15T09:00:00Z'));
  let alerting: ReturnType<typeof testAlerting>;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com', ADMIN_PASSWORD });
    await setCatalog(runtime, 'services:\n  - name: billing\n    rules: { ip: [192.0.2.10] }\n');
    await ingestDays(
      runtime,
      daysUpTo('2025-03-15', 10).map((day) => ({
        day,
        sources: [
          { ip: '192.0.2.10', count: 100, pass: true },
          { ip: '203.0.113.9', count: 20, pass: false },
        ],
      })),
    );
    // SMTP is down, so the alert's delivery fails: the history has to show that.
    alerting = testAlerting(runtime, {
      clock,
      settings: JSON.stringify({ ...JSON.parse(onlyRule('new-failing-source')), retryMinutes: [] }),
      smtpUrl: `smtp://127.0.0.1:${await closedPort()}`,
    });
    await alerting.run();

    const app = createApp({
      pool: runtime.db.pool,
      config: runtime.config,
      log: silentLog,
      ingest: runtime.ingest,
      demo: false,
      analysis: { router: alertsRouter(alerting.env) },
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    admin = await logIn(baseUrl, 'admin', ADMIN_PASSWORD);
    const created = await fetch(`${baseUrl}/api/users`, {
      method: 'POST',
      headers: { ...sessionHeaders(admin), 'content-type': 'application/json' },
      body: JSON.stringify({
        username: 'viewer',
        role: 'viewer',
        password: 'viewer-password-1234',
      }),
    });
    expect(created.status).toBe(201);
    viewer = await logIn(baseUrl, 'viewer', 'viewer-password-1234');
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await runtime?.dispose();
  });

  it('needs a login', async () => {
    const response = await fetch(`${baseUrl}/api/alerts`);
    expect(response.status).toBe(401);
  });

  it('lists alerts with state, delivery result and link', async () => {
    const response = await fetch(`${baseUrl}/api/alerts?state=open`, {
      headers: sessionHeaders(viewer, false),
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.total).toBe(1);
    expect(body.rows[0]).toMatchObject({
      key: 'new-failing-source:example.com',
      rule: 'new-failing-source',
      domain: 'example.com',
      state: 'open',
      severity: 'warning',
      delivery: 'failed',
      link:
        `${PUBLIC_URL}/records?range=custom&from=2025-03-08&to=2025-03-15` +
        '&domain=example.com&result=fail&source_ip=203.0.113.9',
    });
    expect(body.rows[0].deliveries).toEqual([
      expect.objectContaining({
        kind: 'opened',
        recipient: 'secops@example.com',
        status: 'failed',
        attempts: 1,
        last_error: expect.stringContaining('ECONNREFUSED'),
      }),
    ]);
  });

  it('rejects an unknown filter value', async () => {
    const response = await fetch(`${baseUrl}/api/alerts?state=closed`, {
      headers: sessionHeaders(viewer, false),
    });
    expect(response.status).toBe(400);
    expect((await response.json()).error.message).toBe(
      'Invalid state="closed": expected one of open, resolved',
    );
  });

  it('lists failed deliveries and lets an admin retry one', async () => {
    const list = await fetch(`${baseUrl}/api/alerts/deliveries?status=failed`, {
      headers: sessionHeaders(viewer, false),
    });
    const { rows } = await list.json();
    expect(rows).toHaveLength(1);
    const retryUrl = `${baseUrl}/api/alerts/deliveries/${rows[0].id}/retry`;

    const byViewer = await fetch(retryUrl, { method: 'POST', headers: sessionHeaders(viewer) });
    expect(byViewer.status).toBe(403);
    const withoutCsrf = await fetch(retryUrl, {
      method: 'POST',
      headers: sessionHeaders(admin, false),
    });
    expect(withoutCsrf.status).toBe(403);

    const retried = await fetch(retryUrl, { method: 'POST', headers: sessionHeaders(admin) });
    expect(retried.status).toBe(200);
    const pending = await fetch(`${baseUrl}/api/alerts/deliveries?status=pending`, {
      headers: sessionHeaders(admin, false),
    });
    expect((await pending.json()).rows.map((row: { id: number }) => row.id)).toEqual([rows[0].id]);
  });

  it('lists the rules with their settings', async () => {
    const response = await fetch(`${baseUrl}/api/alerts/rules`, {
      headers: sessionHeaders(viewer, false),
    });
    const body = await response.json();
    expect(body.rules.map((rule: { rule: string }) => rule.rule)).toEqual([
      'new-failing-source',
      'new-passing-source',
      'service-pass-rate',
      'unattributed-spike',
      'policy-step',
      'recommendation-change',
      'reporter-silent',
      'nothing-ingested',
      'quarantined-inputs',
      'imap-connection',
    ]);
    const passRate = body.rules.find((rule: { rule: string }) => rule.rule === 'service-pass-rate');
    expect(passRate).toMatchObject({
      name: 'Service pass rate',
      enabled: false,
      file: { enabled: false },
      defaults: { enabled: true, threshold: 98, windowDays: 3, cooldownHours: 24 },
    });
    expect(body.digests).toEqual([]);
    expect(body.retry_minutes).toEqual([]);
  });

  it('saves dashboard edits for admins only, and validates them', async () => {
    const url = `${baseUrl}/api/alerts/rules/service-pass-rate`;
    const put = (session: Session, body: unknown) =>
      fetch(url, {
        method: 'PUT',
        headers: { ...sessionHeaders(session), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    expect((await put(viewer, { overrides: { enabled: true } })).status).toBe(403);

    const invalid = await put(admin, { overrides: { threshold: 120 } });
    expect(invalid.status).toBe(400);
    expect((await invalid.json()).error.message).toMatch(
      /^Invalid rule settings: rules\.service-pass-rate\.threshold: /,
    );
    const unknown = await put(admin, { overrides: { treshold: 90 } });
    expect(unknown.status).toBe(400);

    const saved = await put(admin, { overrides: { enabled: true, threshold: 95 } });
    expect(saved.status).toBe(200);
    expect((await saved.json()).settings).toMatchObject({ enabled: true, threshold: 95 });

    const rules = await (
      await fetch(`${baseUrl}/api/alerts/rules`, { headers: sessionHeaders(viewer, false) })
    ).json();
    const passRate = rules.rules.find(
      (rule: { rule: string }) => rule.rule === 'service-pass-rate',
    );
    expect(passRate).toMatchObject({
      enabled: true,
      settings: { threshold: 95 },
      overrides: { enabled: true, threshold: 95 },
      updated_by: 'admin',
    });

    // The evaluation uses the edited settings.
    const { effectiveRuleSettings } = await import('../../src/notify/evaluate.js');
    const effective = await effectiveRuleSettings(alerting.env);
    expect(effective.get('service-pass-rate')).toMatchObject({ enabled: true, threshold: 95 });
  });

  it('resolves open alerts silently when their rule is switched off', async () => {
    const response = await fetch(`${baseUrl}/api/alerts/rules/new-failing-source`, {
      method: 'PUT',
      headers: { ...sessionHeaders(admin), 'content-type': 'application/json' },
      body: JSON.stringify({ overrides: { enabled: false } }),
    });
    expect(response.status).toBe(200);

    clock.advanceHours(1);
    const run = await alerting.run();
    expect(run.evaluation.notifications).toEqual([]);
    const { rows } = await runtime.db.pool.query(
      `SELECT state, resolution FROM alerts WHERE alert_key = 'new-failing-source:example.com'`,
    );
    expect(rows).toEqual([{ state: 'resolved', resolution: 'rule-disabled' }]);
  });
});
