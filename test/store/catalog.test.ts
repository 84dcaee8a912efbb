import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CatalogError, parseCatalog } from '../../src/analyze/catalog.js';
import {
  addServiceSource,
  findCatalog,
  findCatalogVersion,
  syncCatalogFile,
  updateCatalog,
} from '../../src/store/catalog.js';
import {
  openTestRuntime,
  postgresAvailable,
  silentLog,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';

const FIRST = `services:
  - name: billing
    team: payments
    rules:
      ip: [203.0.113.0/24]
      dkim: [{ domain: billing.example.com, selector: s1 }]
  - name: Newsletter
    rules:
      provider: mailchimp
`;

const SECOND = `services:
  - name: billing
    rules:
      spf: [billing.example.com]
`;

const kinds: DatabaseKind[] = ['pglite'];
if (await postgresAvailable()) kinds.push('postgres');

describe.each(kinds)('service catalog in %s', (kind) => {
  let runtime: TestRuntime;
  let folder: string;
  let file: string;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind);
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-catalog-'));
    file = path.join(folder, 'services.yaml');
  });

  afterAll(async () => {
    await runtime?.dispose();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('starts empty at version 0', async () => {
    const stored = await findCatalog(runtime.db.pool);

    expect(stored.version).toBe(0);
    expect(stored.catalog.services).toEqual([]);
    expect(stored.file).toBeNull();
  });

  it('loads the file into the database copy', async () => {
    fs.writeFileSync(file, FIRST);
    const update = await syncCatalogFile(runtime.db.pool, file, silentLog);

    expect(update.changed).toBe(true);
    expect(update.version).toBe(1);
    const stored = await findCatalog(runtime.db.pool);
    expect(stored.catalog).toEqual(parseCatalog(FIRST));
    expect(stored.file).toMatchObject({ path: file, version: 1 });
  });

  it('keeps the copy when the file did not change', async () => {
    const update = await syncCatalogFile(runtime.db.pool, file, silentLog);

    expect(update.changed).toBe(false);
    expect(await findCatalogVersion(runtime.db.pool)).toBe(1);
  });

  it('adds a source to a service, matching its name without case', async () => {
    const result = await addServiceSource(runtime.db.pool, 'newsletter', '2001:db8:5::/48');

    expect(result).toEqual({ status: 'added', service: 'Newsletter', version: 2 });
    const stored = await findCatalog(runtime.db.pool);
    expect(stored.catalog.services[1].rules.ip).toEqual(['2001:db8:5::/48']);
    expect(stored.catalog.services[1].rules.provider).toEqual(['mailchimp']);
    // The file now lags behind the copy.
    expect(stored.file?.version).toBe(1);
  });

  it('changes nothing when the source is already listed', async () => {
    const result = await addServiceSource(runtime.db.pool, 'billing', '203.0.113.0/24');

    expect(result).toEqual({ status: 'exists', service: 'billing', version: 2 });
  });

  it('reports an unknown service', async () => {
    const result = await addServiceSource(runtime.db.pool, 'nobody', '192.0.2.1');

    expect(result).toEqual({ status: 'not-found' });
  });

  it('rejects an invalid range before changing anything', async () => {
    await expect(addServiceSource(runtime.db.pool, 'billing', '300.1.2.0/24')).rejects.toThrow(
      'invalid CIDR "300.1.2.0/24"',
    );
    expect(await findCatalogVersion(runtime.db.pool)).toBe(2);
  });

  it('keeps API edits over an unchanged file at the next start', async () => {
    const update = await syncCatalogFile(runtime.db.pool, file, silentLog);

    expect(update.changed).toBe(false);
    const stored = await findCatalog(runtime.db.pool);
    expect(stored.catalog.services[1].rules.ip).toEqual(['2001:db8:5::/48']);
  });

  it('replaces the copy when the file changed', async () => {
    fs.writeFileSync(file, SECOND);
    const update = await syncCatalogFile(runtime.db.pool, file, silentLog);

    expect(update.changed).toBe(true);
    expect(update.version).toBe(3);
    const stored = await findCatalog(runtime.db.pool);
    expect(stored.catalog.services.map((service) => service.name)).toEqual(['billing']);
    expect(stored.file?.version).toBe(3);
  });

  it('rejects an invalid file naming the file, service and rule', async () => {
    fs.writeFileSync(
      file,
      'services:\n  - name: billing\n    rules:\n      ip: [203.0.113.0/24, 300.1.2.0/24]\n',
    );

    const error = await syncCatalogFile(runtime.db.pool, file, silentLog).catch((e) => e);

    expect(error).toBeInstanceOf(CatalogError);
    expect(error.message).toContain(file);
    expect(error.issues).toEqual(['Service "billing", rule ip[1]: invalid CIDR "300.1.2.0/24"']);
    expect(await findCatalogVersion(runtime.db.pool)).toBe(3);
  });

  it('names a missing file', async () => {
    const missing = path.join(folder, 'missing.yaml');

    await expect(syncCatalogFile(runtime.db.pool, missing, silentLog)).rejects.toThrow(
      `Cannot read service catalog ${missing}: ENOENT`,
    );
  });

  it('applies concurrent changes one after the other', async () => {
    const ranges = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'];
    const results = await Promise.all(
      ranges.map((range) => addServiceSource(runtime.db.pool, 'billing', range)),
    );

    expect(results.map((result) => result.status)).toEqual(['added', 'added', 'added', 'added']);
    const stored = await findCatalog(runtime.db.pool);
    expect([...stored.catalog.services[0].rules.ip].sort()).toEqual(ranges);
    expect(stored.version).toBe(7);
  });

  it('leaves the catalog as it was when a change returns null', async () => {
    const update = await updateCatalog(runtime.db.pool, () => null);

    expect(update.changed).toBe(false);
    expect(update.version).toBe(7);
  });
});
