import fs from 'node:fs';
import path from 'node:path';
import dns2 from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseCatalog } from '../../src/analyze/catalog.js';
import { createSystemResolver, ReverseDnsLookup } from '../../src/analyze/enrichment.js';
import { AnalysisService, startAnalysisWorkers } from '../../src/analyze/service.js';
import { loadConfig } from '../../src/config.js';
import { exportRecords } from '../../src/export/exports.js';
import { ingestInput } from '../../src/ingest/pipeline.js';
import { attributeAllSenders } from '../../src/store/attribution.js';
import { updateCatalog } from '../../src/store/catalog.js';
import { enrichSourceHosts } from '../../src/store/enrichment.js';
import { RollupWorker } from '../../src/store/rollup-worker.js';
import { rollUpAllReports } from '../../src/store/rollups.js';
import {
  openTestRuntime,
  postgresAvailable,
  silentLog,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';

const { Packet } = dns2;
// dns2 3.0 has RCODE at run time but not in its type declarations.
const RCODE = (Packet as unknown as { RCODE: Record<'NXDOMAIN' | 'SERVFAIL', number> }).RCODE;

const FIXTURE = fs.readFileSync(
  path.join(import.meta.dirname, '..', 'fixtures', 'reports', 'rfc7489-google.xml'),
  'utf8',
);

/** The fixture as another day's report, so that it is stored as a new report. */
function reportOfDay(day: number, reportId: string): Buffer {
  const begin = 1764892800 + day * 86400;
  return Buffer.from(
    FIXTURE.replace(
      '<report_id>5717107811868587391</report_id>',
      `<report_id>${reportId}</report_id>`,
    )
      .replace('<begin>1764892800</begin>', `<begin>${begin}</begin>`)
      .replace('<end>1764979199</end>', `<end>${begin + 86399}</end>`),
  );
}

// The zone of the responding server. Tests may change its entries.
const PTR: Record<string, string[] | 'servfail'> = {
  '9.113.0.203.in-addr.arpa': ['mail.billing.example.com'],
  '23.100.51.198.in-addr.arpa': ['o1.sendgrid.example'],
};
const A: Record<string, string[]> = {
  'mail.billing.example.com': ['203.0.113.9'],
  // Not the address that pointed here: the name is not forward-confirmed.
  'o1.sendgrid.example': ['198.51.100.99'],
};

function answer(request: dns2.Packet, send: (response: dns2.Packet) => void): void {
  const [question] = request.questions;
  const name = question.name.toLowerCase();
  const response = Packet.createResponseFromRequest(request);
  if (question.type === Packet.TYPE.PTR) {
    const entry = PTR[name];
    if (entry === undefined) response.header.rcode = RCODE.NXDOMAIN;
    else if (entry === 'servfail') response.header.rcode = RCODE.SERVFAIL;
    else {
      for (const domain of entry) {
        response.answers.push({
          name,
          type: Packet.TYPE.PTR,
          class: Packet.CLASS.IN,
          ttl: 60,
          domain,
        } as dns2.Packet.Resource);
      }
    }
  } else if (question.type === Packet.TYPE.A) {
    if (A[name] === undefined) response.header.rcode = RCODE.NXDOMAIN;
    for (const address of A[name] ?? []) {
      response.answers.push({
        name,
        type: Packet.TYPE.A,
        class: Packet.CLASS.IN,
        ttl: 60,
        address,
      } as dns2.Packet.Resource);
    }
  } else {
    response.header.rcode = RCODE.NXDOMAIN;
  }
  send(response);
}

let answering: ReturnType<typeof dns2.createUDPServer>;
let answeringPort: number;
// A server that receives queries and never responds, like a resolver behind a dead link.
let silent: ReturnType<typeof dns2.createUDPServer>;
let silentPort: number;
let silentQueries = 0;

beforeAll(async () => {
  answering = dns2.createUDPServer((request, send) => answer(request, send as never));
  await answering.listen(0, '127.0.0.1');
  answeringPort = answering.address().port;

  silent = dns2.createUDPServer(() => {
    silentQueries += 1;
  });
  await silent.listen(0, '127.0.0.1');
  silentPort = silent.address().port;
});

afterAll(() => {
  answering.close();
  silent.close();
});

async function hosts(runtime: TestRuntime): Promise<Record<string, Record<string, unknown>>> {
  const { rows } = await runtime.db.pool.query(
    `SELECT host(ip) AS ip, ptr, state, names, error,
            extract(epoch FROM expires_at - looked_up_at)::int AS ttl
       FROM source_hosts ORDER BY ip`,
  );
  return Object.fromEntries(rows.map(({ ip, ...rest }) => [ip, rest]));
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const kinds: DatabaseKind[] = ['pglite'];
if (await postgresAvailable()) kinds.push('postgres');

describe.each(kinds)('reverse DNS enrichment in %s', (kind) => {
  let runtime: TestRuntime;
  let lookup: ReverseDnsLookup;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await ingestInput(runtime.ingest, {
      bytes: reportOfDay(0, 'day-0'),
      name: 'day-0.xml',
      source: 'file',
      origin: {},
    });
    await rollUpAllReports(runtime.db.pool);
    await updateCatalog(runtime.db.pool, () =>
      parseCatalog('services:\n  - name: billing\n    rules:\n      ptr: [.billing.example.com]\n'),
    );
    await attributeAllSenders(runtime.db.pool);
    const resolver = createSystemResolver({
      servers: [`127.0.0.1:${answeringPort}`],
      timeoutMs: 1000,
    });
    lookup = new ReverseDnsLookup({ resolver, timeoutMs: 1000, cache: null });
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('stores forward-confirmed names and the state of each lookup', async () => {
    const batch = await enrichSourceHosts(runtime.db.pool, lookup);

    expect(batch).toEqual({ lookedUp: 3, changed: 1 });
    const rows = await hosts(runtime);
    expect(rows['203.0.113.9']).toEqual({
      ptr: 'mail.billing.example.com',
      state: 'ok',
      names: ['mail.billing.example.com'],
      error: null,
      ttl: 86_400,
    });
    expect(rows['198.51.100.23']).toMatchObject({
      ptr: null,
      state: 'not-confirmed',
      names: ['o1.sendgrid.example'],
    });
    expect(rows['2001:db8::7']).toMatchObject({ ptr: null, state: 'no-ptr', ttl: 21_600 });
  });

  it('attributes again the senders whose name changed', async () => {
    const attributed = await attributeAllSenders(runtime.db.pool);

    expect(attributed).toBe(1);
    const { rows } = await runtime.db.pool.query(
      `SELECT service, attribution_rule FROM senders WHERE source_ip = '203.0.113.9'`,
    );
    expect(rows).toEqual([{ service: 'billing', attribution_rule: 'ptr .billing.example.com' }]);
  });

  it('exports the confirmed name as source_name', async () => {
    const exported: Record<string, unknown>[] = [];
    for await (const batch of exportRecords(runtime.db.pool, {})) exported.push(...batch);

    const byIp = Object.fromEntries(exported.map((row) => [row.source_ip, row]));
    expect(byIp['203.0.113.9'].source_name).toBe('mail.billing.example.com');
    expect(byIp['203.0.113.9'].service).toBe('billing');
    expect(byIp['198.51.100.23'].source_name).toBeNull();
  });

  it('looks nothing up while the cache is fresh', async () => {
    expect(await enrichSourceHosts(runtime.db.pool, lookup)).toEqual({ lookedUp: 0, changed: 0 });
  });

  it('looks an expired entry up again', async () => {
    await runtime.db.pool.query(
      `UPDATE source_hosts SET expires_at = now() - interval '1 second' WHERE ip = '203.0.113.9'`,
    );

    expect(await enrichSourceHosts(runtime.db.pool, lookup)).toEqual({ lookedUp: 1, changed: 0 });
    const { rows } = await runtime.db.pool.query(
      `SELECT count(*)::int AS n FROM senders WHERE attributed_version IS NULL`,
    );
    expect(rows[0].n).toBe(0);
  });

  it('keeps a confirmed name when its refresh fails', async () => {
    PTR['9.113.0.203.in-addr.arpa'] = 'servfail';
    try {
      await runtime.db.pool.query(
        `UPDATE source_hosts SET expires_at = now() - interval '1 second' WHERE ip = '203.0.113.9'`,
      );

      expect(await enrichSourceHosts(runtime.db.pool, lookup)).toEqual({ lookedUp: 1, changed: 0 });
      const rows = await hosts(runtime);
      expect(rows['203.0.113.9']).toMatchObject({
        ptr: 'mail.billing.example.com',
        state: 'ok',
        error: 'ESERVFAIL',
        ttl: 300,
      });
    } finally {
      PTR['9.113.0.203.in-addr.arpa'] = ['mail.billing.example.com'];
    }
  });
});

describe.each(kinds)('a DNS server that never answers, in %s', (kind) => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('leaves ingest and rollups unaffected while lookups hang', async () => {
    await ingestInput(runtime.ingest, {
      bytes: reportOfDay(0, 'slow-0'),
      name: 'slow-0.xml',
      source: 'file',
      origin: {},
    });
    await rollUpAllReports(runtime.db.pool);
    const timeoutMs = 2000;
    const resolver = createSystemResolver({ servers: [`127.0.0.1:${silentPort}`], timeoutMs });
    const lookup = new ReverseDnsLookup({ resolver, timeoutMs, cache: null });
    const queriesBefore = silentQueries;

    const started = Date.now();
    let enrichedAt = 0;
    const enrichment = enrichSourceHosts(runtime.db.pool, lookup).then((batch) => {
      enrichedAt = Date.now();
      return batch;
    });
    await waitFor(async () => silentQueries > queriesBefore);

    // While the lookups wait for the server, new reports are stored and rolled up.
    for (let day = 1; day <= 3; day++) {
      const outcome = await ingestInput(runtime.ingest, {
        bytes: reportOfDay(day, `slow-${day}`),
        name: `slow-${day}.xml`,
        source: 'file',
        origin: {},
      });
      expect(outcome.reportsStored).toBe(1);
    }
    expect(await rollUpAllReports(runtime.db.pool)).toBe(3);
    const ingestedAt = Date.now();

    const batch = await enrichment;
    expect(ingestedAt).toBeLessThan(enrichedAt);
    expect(enrichedAt - started).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(batch).toEqual({ lookedUp: 3, changed: 0 });
    const rows = await hosts(runtime);
    for (const ip of ['198.51.100.23', '203.0.113.9', '2001:db8::7']) {
      expect(rows[ip]).toMatchObject({ state: 'timeout', ptr: null, error: 'ETIMEOUT', ttl: 300 });
    }
    const { rows: stats } = await runtime.db.pool.query(
      'SELECT sum(messages)::int AS messages FROM daily_sender_stats',
    );
    expect(stats[0].messages).toBe(80);
  });

  it('runs in serve alongside rollups without holding them up', async () => {
    const config = loadConfig({
      DATA_DIR: 'memory://',
      REVERSE_DNS: `127.0.0.1:${silentPort}`,
      REVERSE_DNS_TIMEOUT_MS: '1500',
    });
    expect(config.reverseDns).toEqual([`127.0.0.1:${silentPort}`]);
    await runtime.db.pool.query('DELETE FROM source_hosts');
    const analysis = new AnalysisService({ pool: runtime.db.pool, log: silentLog, config });
    const rollups = new RollupWorker(runtime.db.pool, silentLog);
    const workers = startAnalysisWorkers(analysis, rollups, config);
    rollups.start();
    try {
      const queriesBefore = silentQueries;
      const outcome = await ingestInput(runtime.ingest, {
        bytes: reportOfDay(4, 'slow-4'),
        name: 'slow-4.xml',
        source: 'file',
        origin: {},
      });
      rollups.wake();
      await waitFor(async () => silentQueries > queriesBefore);

      // The lookups are hanging now; rollup and attribution of the new report go on.
      const started = Date.now();
      await waitFor(async () => {
        const { rows } = await runtime.db.pool.query(
          `SELECT count(*)::int AS n FROM reports WHERE rolled_up_at IS NULL`,
        );
        return rows[0].n === 0;
      });
      await waitFor(async () => {
        const { rows } = await runtime.db.pool.query(
          `SELECT count(*)::int AS n FROM senders WHERE attributed_version IS NULL`,
        );
        return rows[0].n === 0;
      });
      expect(outcome.reportsStored).toBe(1);
      expect(Date.now() - started).toBeLessThan(1500);

      await waitFor(async () => {
        const rows = await hosts(runtime);
        return (
          Object.values(rows).length === 3 &&
          Object.values(rows).every((row) => row.state === 'timeout')
        );
      });
    } finally {
      await workers.stop();
      await rollups.stop();
    }
  });

  it('starts no lookups when reverse DNS is off', async () => {
    const config = loadConfig({ DATA_DIR: 'memory://' });
    expect(config.reverseDns).toBe('off');
    await runtime.db.pool.query('DELETE FROM source_hosts');
    const analysis = new AnalysisService({ pool: runtime.db.pool, log: silentLog, config });
    const rollups = { onRolledUp: (_reports: number) => {} };
    const workers = startAnalysisWorkers(analysis, rollups, config);
    try {
      rollups.onRolledUp(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { rows } = await runtime.db.pool.query('SELECT count(*)::int AS n FROM source_hosts');
      expect(rows[0].n).toBe(0);
    } finally {
      await workers.stop();
    }
  });
});

describe('REVERSE_DNS setting', () => {
  it('reads on, off and server lists', () => {
    expect(loadConfig({ REVERSE_DNS: 'on' }).reverseDns).toBe('system');
    expect(loadConfig({ REVERSE_DNS: 'OFF' }).reverseDns).toBe('off');
    expect(loadConfig({ REVERSE_DNS: '127.0.0.1:5353, [::1]:53' }).reverseDns).toEqual([
      '127.0.0.1:5353',
      '[::1]:53',
    ]);
  });

  it('rejects a server that is not an address', () => {
    expect(() => loadConfig({ REVERSE_DNS: 'dns.example.com' })).toThrow(
      'Invalid REVERSE_DNS="dns.example.com": expected off, on (the system resolvers) or DNS servers such as 127.0.0.1:53,[::1]:53',
    );
  });
});
