/**
 * The service catalog: a YAML file naming each service that sends mail for the team's domains
 * and the rules that recognise its mail. The file looks like this:
 *
 * ```yaml
 * services:
 *   - name: billing
 *     team: payments
 *     contact: payments-oncall@example.com
 *     rules:
 *       ip: [203.0.113.0/24, 2001:db8:1::/48]
 *       ptr: [.mail.billing.example.com]
 *       dkim: [{ domain: billing.example.com, selector: s1 }, billing.example.com]
 *       spf: [bounces.billing.example.com]
 *       header_from: [billing.example.com]
 *       provider: sendgrid
 * ```
 *
 * Every rule takes one value or a list. `ptr`, `spf` and `header_from` match the name itself
 * and every subdomain of it, with or without the leading dot. `dkim` matches the `d=` domain
 * exactly, and also the selector when one is given. `provider` takes ids from `PROVIDERS`.
 */
import { Document, isMap, isSeq, parseDocument, visit } from 'yaml';
import { z } from 'zod';

import { parseIpRange } from './ip-range.js';
import { PROVIDERS, getProvider } from './providers.js';

/** A DKIM rule: the `d=` domain and, optionally, the selector `s=`. */
export interface DkimRule {
  domain: string;
  selector: string | null;
}

/** The rules of one service, each list empty when the file leaves the rule out. */
export interface ServiceRules {
  /** CIDR ranges or single addresses, IPv4 or IPv6. */
  ip: string[];
  /** Reverse DNS suffixes; matched only against forward-confirmed names. */
  ptr: string[];
  dkim: DkimRule[];
  /** SPF-authenticated or envelope-from domains. */
  spf: string[];
  /** Header From domains. */
  headerFrom: string[];
  /** Ids of known providers the service sends through. */
  provider: string[];
}

/** A service that sends mail in the team's name. */
export interface SendingService {
  name: string;
  team: string | null;
  contact: string | null;
  description: string | null;
  rules: ServiceRules;
}

/** The parsed catalog; services keep their order in the file, which breaks attribution ties. */
export interface ServiceCatalog {
  services: SendingService[];
}

/** A catalog file that cannot be used, with every problem found in it. */
export class CatalogError extends Error {
  readonly code = 'invalid-catalog';
  /** One line per problem, e.g. `Service "billing", rule ip[1]: invalid CIDR "300.1.2.0/24"`. */
  readonly issues: string[];
  /** The file name or other label given to `parseCatalog`. */
  readonly source: string | null;

  constructor(issues: string[], source: string | null) {
    const where = source ? ` ${source}` : '';
    super(`Invalid service catalog${where}: ${issues.join('; ')}`);
    this.name = 'CatalogError';
    this.issues = issues;
    this.source = source;
  }
}

// Host names as DNS allows them, plus `_` which DKIM selectors and some PTR names carry.
const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);

function normalizeName(value: string): string {
  return value.trim().toLowerCase().replace(/\.$/, '');
}

function domainField(kind: string, allowLeadingDot: boolean) {
  return z
    .string()
    .transform((value) => normalizeName(value))
    .superRefine((value, ctx) => {
      const name = allowLeadingDot ? value.replace(/^\./, '') : value;
      if (!HOST_NAME.test(name))
        ctx.addIssue({ code: 'custom', message: `invalid ${kind} "${value}"` });
    });
}

const ipField = z.string().superRefine((value, ctx) => {
  try {
    parseIpRange(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const providerField = z
  .string()
  .transform((value) => value.trim().toLowerCase())
  .superRefine((value, ctx) => {
    if (getProvider(value)) return;
    const known = PROVIDERS.map((provider) => provider.id).join(', ');
    ctx.addIssue({ code: 'custom', message: `unknown provider "${value}" (known: ${known})` });
  });

// A bare string is shorthand for `{ domain }` without a selector.
const dkimField = z.preprocess(
  (value) => (typeof value === 'string' ? { domain: value } : value),
  z
    .strictObject({
      domain: domainField('DKIM domain', false),
      selector: domainField('DKIM selector', false).nullish(),
    })
    .transform(({ domain, selector }): DkimRule => ({ domain, selector: selector ?? null })),
);

/** Builds a schema that reads one value or a list as a list. A single value is item 0 in errors. */
function oneOrMany<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (value) => (value == null ? [] : Array.isArray(value) ? value : [value]),
    z.array(item),
  );
}

const rulesSchema = z.strictObject({
  ip: oneOrMany(ipField),
  ptr: oneOrMany(domainField('PTR suffix', true)),
  dkim: oneOrMany(dkimField),
  spf: oneOrMany(domainField('SPF domain', true)),
  header_from: oneOrMany(domainField('header From domain', true)),
  provider: oneOrMany(providerField),
});

const optionalText = z
  .string()
  .nullish()
  .transform((value) => (value?.trim() ? value.trim() : null));

const serviceSchema = z.strictObject({
  name: z.string().trim().min(1, 'missing service name'),
  team: optionalText,
  contact: optionalText,
  description: optionalText,
  rules: rulesSchema.nullish(),
});

const catalogSchema = z.strictObject({ services: z.array(serviceSchema).nullish() });

interface PathIssue {
  path: PropertyKey[];
  message: string;
}

/**
 * Finds duplicate names and services without rules in the raw input, so that these are reported
 * together with value errors, which would otherwise stop zod before its refinements run.
 */
function checkServices(input: unknown): PathIssue[] {
  const services = (input as { services?: unknown } | null)?.services;
  if (!Array.isArray(services)) return [];

  const issues: PathIssue[] = [];
  const seen = new Set<string>();
  services.forEach((service: unknown, index) => {
    if (service === null || typeof service !== 'object') return;
    const { name, rules } = service as { name?: unknown; rules?: unknown };

    if (typeof name === 'string' && name.trim() !== '') {
      const key = name.trim().toLowerCase();
      if (seen.has(key))
        issues.push({ path: ['services', index, 'name'], message: 'duplicate service name' });
      seen.add(key);
    }

    const hasRule =
      rules !== null &&
      typeof rules === 'object' &&
      Object.values(rules).some(
        (value) => value != null && !(Array.isArray(value) && value.length === 0),
      );
    if (!hasRule) {
      issues.push({
        path: ['services', index, 'rules'],
        message: 'no rules, so the service can never match',
      });
    }
  });
  return issues;
}

/** Rewrites zod's generic messages in the words of the catalog file. */
function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const inRules = issue.path[issue.path.length - 1] === 'rules';
    const noun = inRules ? 'unknown rule' : 'unknown field';
    const known = inRules ? ' (known: ip, ptr, dkim, spf, header_from, provider)' : '';
    return issue.keys.map((key) => `${noun} "${key}"${known}`).join(', ');
  }
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'missing';
    return `expected ${issue.expected}, got ${JSON.stringify(issue.input)}`;
  }
  return issue.message;
}

/** Names the place of a problem in the words of the file: service, then rule and position. */
function describePath(path: readonly PropertyKey[], input: unknown): string {
  if (path[0] !== 'services' || typeof path[1] !== 'number') {
    return path.length === 0 ? 'Catalog' : `Catalog, field ${path.map(String).join('.')}`;
  }

  const index = path[1];
  const services = (input as { services?: unknown[] } | null)?.services ?? [];
  const nameOf = (entry: unknown) => {
    const name = (entry as { name?: unknown } | null)?.name;
    return typeof name === 'string' ? name.trim() : '';
  };
  const name = nameOf(services[index]);
  // Two services with one name would read alike, so the message adds their position.
  const isDuplicate = services.filter((entry) => name !== '' && nameOf(entry) === name).length > 1;
  const service =
    name === ''
      ? `Service #${index + 1}`
      : `Service "${name}"${isDuplicate ? ` (#${index + 1})` : ''}`;

  const rest = path.slice(2);
  if (rest.length === 0) return service;
  if (rest[0] !== 'rules' || rest.length === 1)
    return `${service}, field ${rest.map(String).join('.')}`;

  let rule = String(rest[1]);
  for (const part of rest.slice(2))
    rule += typeof part === 'number' ? `[${part}]` : `.${String(part)}`;
  return `${service}, rule ${rule}`;
}

/** Checks an already parsed YAML value against the catalog shape and every rule value. */
export function validateCatalog(
  input: unknown,
): { ok: true; catalog: ServiceCatalog } | { ok: false; issues: string[] } {
  // An empty file is an empty catalog: every source is then unattributed or a known provider.
  const value = input ?? { services: [] };
  const result = catalogSchema.safeParse(value, { reportInput: true });
  const found: PathIssue[] = checkServices(value);
  if (!result.success) {
    for (const issue of result.error.issues) {
      found.push({ path: issue.path, message: describeIssue(issue) });
    }
  }
  if (!result.success || found.length > 0) {
    // Group the problems by service in file order, keeping each service's problems in order.
    const order = (path: PropertyKey[]) => (typeof path[1] === 'number' ? path[1] : -1);
    const issues = found
      .map((issue, position) => ({ issue, position }))
      .sort((a, b) => order(a.issue.path) - order(b.issue.path) || a.position - b.position)
      .map(({ issue }) => `${describePath(issue.path, value)}: ${issue.message}`);
    return { ok: false, issues };
  }

  const services = (result.data.services ?? []).map((service): SendingService => ({
    name: service.name,
    team: service.team,
    contact: service.contact,
    description: service.description,
    rules: {
      ip: service.rules?.ip.map((range) => range.trim()) ?? [],
      ptr: service.rules?.ptr ?? [],
      dkim: service.rules?.dkim ?? [],
      spf: service.rules?.spf ?? [],
      headerFrom: service.rules?.header_from ?? [],
      provider: service.rules?.provider ?? [],
    },
  }));
  return { ok: true, catalog: { services } };
}

/**
 * Parses and validates a catalog file, collecting every problem before failing.
 * @throws CatalogError listing each YAML syntax error or invalid value
 */
export function parseCatalog(text: string, options: { source?: string } = {}): ServiceCatalog {
  const source = options.source ?? null;
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) {
    const issues = document.errors.map((error) => {
      const position = error.linePos?.[0];
      const where = position ? `Line ${position.line}, column ${position.col}` : 'YAML';
      // prettyErrors appends the position and a source excerpt, which `where` already carries.
      return `${where}: ${error.message.split(' at line ')[0]}`;
    });
    throw new CatalogError(issues, source);
  }

  const result = validateCatalog(document.toJS());
  if (!result.ok) throw new CatalogError(result.issues, source);
  return result.catalog;
}

function oneOrList<T>(values: T[]): T | T[] | undefined {
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values;
}

/** Writes a catalog back as YAML in the shape `parseCatalog` reads, with short lists on one line. */
export function serializeCatalog(catalog: ServiceCatalog): string {
  const services = catalog.services.map((service) => {
    const { rules } = service;
    const dkim = rules.dkim.map((rule) =>
      rule.selector === null
        ? { domain: rule.domain }
        : { domain: rule.domain, selector: rule.selector },
    );
    const ruleEntries = {
      ip: rules.ip.length > 0 ? rules.ip : undefined,
      ptr: rules.ptr.length > 0 ? rules.ptr : undefined,
      dkim: dkim.length > 0 ? dkim : undefined,
      spf: rules.spf.length > 0 ? rules.spf : undefined,
      header_from: rules.headerFrom.length > 0 ? rules.headerFrom : undefined,
      provider: oneOrList(rules.provider),
    };
    return {
      name: service.name,
      team: service.team ?? undefined,
      contact: service.contact ?? undefined,
      description: service.description ?? undefined,
      rules: ruleEntries,
    };
  });

  const document = new Document({ services });
  // Rule lists read best inline, like the hand-written example above.
  visit(document, {
    Pair(_, pair) {
      const key = (pair.key as { value?: unknown } | null)?.value;
      if (key !== 'rules' || !isMap(pair.value)) return;
      for (const rule of pair.value.items) {
        if (isSeq(rule.value)) rule.value.flow = true;
      }
    },
  });
  return document.toString({ lineWidth: 100 });
}
