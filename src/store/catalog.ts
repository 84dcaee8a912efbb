/**
 * The database copy of the service catalog and its version. SERVICES_FILE is loaded into it at
 * start-up when the file changed since the last load. API edits change the copy only, so the
 * file is out of date until someone downloads the YAML and commits it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type pg from 'pg';
import type { Logger } from 'pino';

import {
  CatalogError,
  parseCatalog,
  validateCatalog,
  type SendingService,
  type ServiceCatalog,
  type ServiceRules,
} from '../analyze/catalog.js';
import { parseIpRange } from '../analyze/ip-range.js';

/** The rules of a service in the shape of the catalog file. */
export interface CatalogRulesJson {
  ip: string[];
  ptr: string[];
  dkim: { domain: string; selector?: string }[];
  spf: string[];
  header_from: string[];
  provider: string[];
}

/** A service in the shape of the catalog file, as the API sends and accepts it. */
export interface CatalogServiceJson {
  name: string;
  team: string | null;
  contact: string | null;
  description: string | null;
  rules: CatalogRulesJson;
}

/** The file that was last loaded into the database copy. */
export interface CatalogFileState {
  path: string;
  sha256: string;
  /** The catalog version the load produced. The file is in sync while the version stays. */
  version: number;
  loadedAt: string;
}

/** The database copy of the catalog at one version. */
export interface StoredCatalog {
  version: number;
  catalog: ServiceCatalog;
  file: CatalogFileState | null;
}

/** The outcome of a catalog change. `changed` is false when the change was a no-op. */
export interface CatalogUpdate {
  changed: boolean;
  version: number;
  catalog: ServiceCatalog;
}

const VERSION_KEY = 'catalog_version';
const FILE_KEY = 'catalog_file';

// One statement, so that the version and the services come from the same snapshot.
const FIND_CATALOG = `
  SELECT version.value::bigint AS version,
         file.value AS file,
         coalesce((SELECT jsonb_agg(jsonb_build_object(
                           'name', name, 'team', team, 'contact', contact,
                           'description', description, 'rules', rules) ORDER BY position)
                     FROM services), '[]') AS services
    FROM settings version
    LEFT JOIN settings file ON file.key = '${FILE_KEY}'
   WHERE version.key = '${VERSION_KEY}'`;

const LOCK_VERSION = `SELECT value::bigint AS version FROM settings WHERE key = '${VERSION_KEY}' FOR UPDATE`;

const DELETE_SERVICES = 'DELETE FROM services';

const INSERT_SERVICES = `
  INSERT INTO services (name, team, contact, description, rules, position)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int[])`;

const BUMP_VERSION = `
  UPDATE settings SET value = to_jsonb(value::bigint + 1), updated_at = now()
   WHERE key = '${VERSION_KEY}'
  RETURNING value::bigint AS version`;

const SAVE_FILE_STATE = `
  INSERT INTO settings (key, value) VALUES ('${FILE_KEY}', $1)
  ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`;

const FIND_VERSION = `SELECT value::bigint AS version FROM settings WHERE key = '${VERSION_KEY}'`;

/** Writes a service's rules in the shape of the catalog file, every rule as a list. */
export function rulesToJson(rules: ServiceRules): CatalogRulesJson {
  return {
    ip: [...rules.ip],
    ptr: [...rules.ptr],
    dkim: rules.dkim.map((rule) =>
      rule.selector === null
        ? { domain: rule.domain }
        : { domain: rule.domain, selector: rule.selector },
    ),
    spf: [...rules.spf],
    header_from: [...rules.headerFrom],
    provider: [...rules.provider],
  };
}

/** Writes a catalog in the shape of the catalog file, which `validateCatalog` reads back. */
export function catalogToJson(catalog: ServiceCatalog): { services: CatalogServiceJson[] } {
  return {
    services: catalog.services.map((service: SendingService) => ({
      name: service.name,
      team: service.team,
      contact: service.contact,
      description: service.description,
      rules: rulesToJson(service.rules),
    })),
  };
}

function toCatalog(services: unknown, source: string): ServiceCatalog {
  const result = validateCatalog({ services });
  if (!result.ok) throw new CatalogError(result.issues, source);
  return result.catalog;
}

/** Finds the database copy of the catalog with its version and the state of the file. */
export async function findCatalog(pool: pg.Pool | pg.PoolClient): Promise<StoredCatalog> {
  const { rows } = await pool.query(FIND_CATALOG);
  if (rows.length === 0) throw new Error('Missing catalog_version in settings: run the migrations');
  return {
    version: rows[0].version,
    // Only validated catalogs are written, so a failure here means the table was edited by hand.
    catalog: toCatalog(rows[0].services, 'in the database'),
    file: (rows[0].file as CatalogFileState | null) ?? null,
  };
}

/** Returns the current catalog version, which every change increments. */
export async function findCatalogVersion(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ version: number }>(FIND_VERSION);
  return rows[0]?.version ?? 0;
}

/**
 * Changes the catalog in one transaction: locks the version, hands the current copy to
 * `change`, and writes what it returns with the next version. `change` returns null to leave
 * the catalog as it is. Several instances may call this at once, and they take turns on the lock.
 * @throws CatalogError when `change` returns a catalog that does not validate
 */
export async function updateCatalog(
  pool: pg.Pool,
  change: (current: StoredCatalog) => ServiceCatalog | null,
  options: { file?: { path: string; sha256: string } } = {},
): Promise<CatalogUpdate> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(LOCK_VERSION);
    const current = await findCatalog(client);
    const next = change(current);
    if (next === null) {
      await client.query('ROLLBACK');
      return { changed: false, version: current.version, catalog: current.catalog };
    }

    // Round-trip through validation, so that the stored copy always loads.
    const json = catalogToJson(next);
    const catalog = toCatalog(json.services, 'update');
    await client.query(DELETE_SERVICES);
    await client.query(INSERT_SERVICES, [
      json.services.map((service) => service.name),
      json.services.map((service) => service.team),
      json.services.map((service) => service.contact),
      json.services.map((service) => service.description),
      json.services.map((service) => JSON.stringify(service.rules)),
      json.services.map((_, index) => index),
    ]);
    const { rows } = await client.query<{ version: number }>(BUMP_VERSION);
    const version = rows[0].version;
    if (options.file) {
      const state: CatalogFileState = {
        ...options.file,
        version,
        loadedAt: new Date().toISOString(),
      };
      await client.query(SAVE_FILE_STATE, [JSON.stringify(state)]);
    }
    await client.query('COMMIT');
    return { changed: true, version, catalog };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Reads and validates a catalog file.
 * @throws CatalogError naming the file, the service and the rule of each problem
 * @throws Error naming the file when it cannot be read
 */
export async function readCatalogFile(
  path: string,
): Promise<{ catalog: ServiceCatalog; sha256: string }> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new Error(`Cannot read service catalog ${path}: ${reason}`, { cause: error });
  }
  const catalog = parseCatalog(text, { source: path });
  return { catalog, sha256: createHash('sha256').update(text).digest('hex') };
}

/**
 * Loads SERVICES_FILE into the database copy when its content differs from the last load.
 * An unchanged file keeps the copy, with any edits made through the API since.
 * @throws CatalogError or Error as `readCatalogFile`, leaving the database copy unchanged
 */
export async function syncCatalogFile(
  pool: pg.Pool,
  path: string,
  log: Logger,
): Promise<CatalogUpdate> {
  const { catalog, sha256 } = await readCatalogFile(path);
  const update = await updateCatalog(
    pool,
    (current) => {
      if (current.file?.sha256 === sha256) return null;
      if (current.file && current.file.version !== current.version) {
        log.warn(
          { file: path, fileVersion: current.file.version, version: current.version },
          'The changed catalog file replaces the edits made through the API since it was last loaded',
        );
      }
      return catalog;
    },
    { file: { path, sha256 } },
  );
  if (update.changed) {
    log.info(
      { file: path, services: catalog.services.length, version: update.version },
      'Loaded the service catalog file',
    );
  }
  return update;
}

/** The outcome of `addServiceSource`. */
export type AddSourceResult =
  { status: 'not-found' } | { status: 'exists' | 'added'; service: string; version: number };

/**
 * Adds an IP address or CIDR range to a service's `ip` rules, matching the name without case.
 * @throws Error naming the range when it is not a valid IP address or CIDR range
 */
export async function addServiceSource(
  pool: pg.Pool,
  serviceName: string,
  range: string,
): Promise<AddSourceResult> {
  const nameKey = serviceName.trim().toLowerCase();
  const text = range.trim();
  parseIpRange(text);
  let found: string | null = null;
  const update = await updateCatalog(pool, ({ catalog }) => {
    const index = catalog.services.findIndex((service) => service.name.toLowerCase() === nameKey);
    if (index < 0) return null;
    const service = catalog.services[index];
    found = service.name;
    if (service.rules.ip.some((ip) => ip.toLowerCase() === text.toLowerCase())) return null;

    const services = [...catalog.services];
    services[index] = { ...service, rules: { ...service.rules, ip: [...service.rules.ip, text] } };
    return { services };
  });
  if (found === null) return { status: 'not-found' };
  return { status: update.changed ? 'added' : 'exists', service: found, version: update.version };
}
