import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEMO_DOMAINS, loadDemoData } from '../../src/commands/demo.js';
import { isCI, postgresAvailable } from '../helpers/database.js';
import { ADMIN_PASSWORD, csvObjects } from '../serve/harness.js';
import { seedDashboardData } from '../serve/seed.js';
import { startAnalysisServer, type AnalysisTestServer } from './analysis-server.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(import.meta.dirname, '..', '..', 'test-artifacts', 'screenshots');
// expect.poll gives up after 1 s by default, too short while other test files load the machine.
const POLL = { timeout: 10_000 };
const SERVICES_FILE = path.join(import.meta.dirname, '..', '..', 'samples', 'services.yaml');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-gpu',
];

function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if (isCI) throw new Error(`Chromium is required in CI at ${CHROMIUM}: apt-get install chromium`);
  return false;
}

const available = chromiumAvailable() && (await postgresAvailable());

describe.skipIf(!available)('dashboard in Chromium', () => {
  let server: AnalysisTestServer<{ limitQuarantinedId: number }>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let limitQuarantinedId: number;
  const dialogs: string[] = [];
  const policyViolations: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startAnalysisServer({ load: seedDashboardData });
    ({ limitQuarantinedId } = server.loaded);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
    page = await context.newPage();
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) policyViolations.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function open(pathAndQuery: string, ready: string): Promise<void> {
    await page.goto(`${server.baseUrl}${pathAndQuery}`);
    await page.waitForSelector(ready);
  }

  async function screenshot(name: string): Promise<void> {
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  it('logs in and returns to the requested view', async () => {
    await page.goto(`${server.baseUrl}/reports?range=all`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await screenshot('login');

    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password', { exact: true }).fill('wrong password');
    await page.getByRole('button', { name: 'Log in' }).click();
    // Hashing the password is slow by design, more so while other test files load the machine.
    await expect
      .poll(() => page.locator('#login-error').textContent(), { timeout: 15_000 })
      .toContain('Wrong user name or password');

    await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/reports\?range=all$/);
    await page.waitForSelector('table tbody tr');
    expect(await page.locator('h1').textContent()).toBe('Reports');
  });

  it('returns only to pages of this site', async () => {
    // Browsers drop the tab, so a naive check would send the user to //127.0.0.9:18099/x.
    await page.goto(`${server.baseUrl}/login?next=/%09/127.0.0.9:18099/x`);

    await expect
      .poll(() => `${new URL(page.url()).origin}${new URL(page.url()).pathname}`, {
        timeout: 15_000,
      })
      .toBe(`${server.baseUrl}/`);
  });

  it('opens each view with a screenshot', async () => {
    const views: Array<[string, string, string]> = [
      ['overview', '/?range=all', 'canvas'],
      ['reports', '/reports?range=all', 'td a[href^="/reports/"]'],
      ['sources', '/sources?range=all', 'td a[href*="source_ip="]'],
      ['records', '/records?range=all', 'td .badge'],
      ['quarantine', '/quarantine?range=all', 'button[aria-label^="Reprocess input"]'],
      ['settings', '/settings', 'text=API tokens'],
    ];
    for (const [name, url, ready] of views) {
      await open(url, ready);
      expect(
        await page.locator('#nav a[aria-current="page"]').getAttribute('data-view'),
        name,
      ).toBe(name);
      await screenshot(name);
    }

    // chart.js draws tooltips on the canvas, so the test calls the tooltip callbacks directly.
    // The seeded server has an empty catalog, so all mail is unattributed.
    await open('/?range=all', 'canvas');
    const tooltip = await page.evaluate(() => {
      const canvas = document.querySelector('canvas');
      const chart = (window as any).Chart.getChart(canvas);
      const callbacks = chart.options.plugins.tooltip.callbacks;
      const fail = chart.data.datasets.find(
        (dataset: any) => dataset.label === 'Unattributed, fail',
      );
      return [
        callbacks.label({ dataIndex: 0, parsed: { y: fail.data[0] }, dataset: fail }),
        callbacks.footer([{ dataIndex: 0 }]),
      ];
    });
    expect(tooltip).toEqual(['Unattributed, fail: 14 (40.0%)', 'Total: 35 messages']);
    expect(await page.getByText('No catalog service sent mail in this window.').count()).toBe(1);

    await open('/reports?range=all&sort=messages&order=desc', 'td a[href^="/reports/"]');
    await page.locator('td a[href^="/reports/"]').first().click();
    await page.waitForSelector('text=Policy published');
    await page.getByRole('button', { name: 'Show raw XML' }).click();
    await page.waitForSelector('pre.raw:not([hidden])');
    expect(await page.locator('pre.raw').textContent()).toContain('<feedback>');
    await screenshot('report-detail');
  });

  it('applies filters and keeps them in the URL', async () => {
    await open('/reports?range=all', 'td a[href^="/reports/"]');
    await page.getByLabel('DMARC result').selectOption('fail');
    await page.waitForURL(/result=fail/);
    await expect
      .poll(() => page.locator('.pager span').first().textContent(), POLL)
      .toBe('1–4 of 4');

    await page.getByLabel('Disposition').selectOption('quarantine');
    await page.waitForURL(/disposition=quarantine/);
    await expect.poll(() => page.locator('tbody tr').count(), POLL).toBe(1);
    expect(await page.locator('tbody tr td a').first().textContent()).toBe('next-day-1');

    // A shared link shows the same filtered view after a reload.
    await page.reload();
    await page.waitForSelector('td a[href^="/reports/"]');
    expect(await page.getByLabel('Disposition').inputValue()).toBe('quarantine');
    expect(await page.locator('tbody tr').count()).toBe(1);

    await page.getByLabel('Date range').selectOption('custom');
    await page.getByLabel('From').fill('2025-12-06');
    await page.getByLabel('From').dispatchEvent('change');
    await page.waitForURL(/from=2025-12-06/);
  });

  it('sorts a table from the keyboard', async () => {
    await open('/sources?range=all', 'td a[href*="source_ip="]');
    const messagesHeader = page.getByRole('button', { name: 'Messages' });
    await messagesHeader.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/sort=messages&order=desc/);
    await expect
      .poll(() => page.locator('tbody tr td a').first().textContent(), POLL)
      .toBe('198.51.100.23');
    expect(await page.locator('th[aria-sort="descending"]').textContent()).toContain('Messages');
  });

  it('exports the filtered table as CSV', async () => {
    await open('/records?range=all&result=fail', 'td .badge');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    const text = fs.readFileSync((await download.path())!, 'utf8');
    const rows = csvObjects(text);

    expect(download.suggestedFilename()).toBe('records.csv');
    expect(rows).toHaveLength(4);
    expect(rows.every((row) => row.dmarc_pass === 'false')).toBe(true);
    expect(rows.map((row) => Number(row.count)).sort((a, b) => a - b)).toEqual([3, 3, 4, 7]);
  });

  it('reprocesses a quarantined input', async () => {
    await open(
      '/quarantine?range=all',
      `button[aria-label="Reprocess input ${limitQuarantinedId}"]`,
    );
    expect(await page.locator('tbody tr').count()).toBe(2);

    await page.getByRole('button', { name: `Reprocess input ${limitQuarantinedId}` }).click();
    await expect
      .poll(() => page.locator('#toast').textContent(), POLL)
      .toContain('Read: 1 reports stored');
    await expect.poll(() => page.locator('tbody tr').count(), POLL).toBe(1);
    await screenshot('quarantine-after-reprocess');
  });

  it('shows hostile report fields as text', async () => {
    const views: Array<[string, string]> = [
      ['/?range=all', 'canvas'],
      ['/reports?range=all', 'td a[href^="/reports/"]'],
      ['/records?range=all&source_ip=192.0.2.66', 'td .badge'],
      ['/sources?range=all', 'td a[href*="source_ip="]'],
    ];
    for (const [url, ready] of views) await open(url, ready);

    const hostileReporter =
      '<script>window.__xss=1</script>Evil Corp<img src=x onerror="window.__xss=2">';
    await open(
      `/reports?range=all&reporter=${encodeURIComponent(hostileReporter)}`,
      'td a[href^="/reports/"]',
    );
    const reporterCell = page.locator('tbody tr td').nth(1);
    expect(await reporterCell.textContent()).toBe(hostileReporter);
    await page.locator('td a[href^="/reports/"]').first().click();
    await page.waitForSelector('text=Policy published');
    await page.getByRole('button', { name: 'Show raw XML' }).click();
    await page.waitForSelector('pre.raw:not([hidden])');
    await page.waitForTimeout(200);
    await screenshot('hostile-report');

    expect(await page.locator('h1').textContent()).toContain('<img src=x onerror=');
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(
      await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
    expect(dialogs).toEqual([]);
  });

  it('follows dark mode and narrow screens', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await open('/?range=all', 'canvas');
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe('rgb(17, 20, 24)');
    await screenshot('overview-dark');

    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
    await open('/?range=all', 'canvas');
    const menu = page.getByRole('button', { name: 'Menu' });
    expect(await page.locator('#nav').isVisible()).toBe(false);
    await menu.click();
    expect(await menu.getAttribute('aria-expanded')).toBe('true');
    await page.getByRole('link', { name: 'Sources', exact: true }).click();
    await page.waitForSelector('td a[href*="source_ip="]');
    await screenshot('sources-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('logs out', async () => {
    await open('/settings', 'text=API tokens');
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await page.waitForURL(/\/login$/);
    await page.goto(`${server.baseUrl}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
  });

  it('ran no inline code and broke no policy', () => {
    expect(policyViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

// The demo a newcomer starts with `npm run demo`: sample reports of three domains, the sample
// catalog, no login. Password resets fail DMARC because Amazon SES signs with its own domain.
describe.skipIf(!available)('analysis views on demo data in Chromium', () => {
  let server: AnalysisTestServer<number>;
  let browser: Browser;
  let page: Page;
  const policyViolations: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startAnalysisServer({
      env: { DOMAINS: DEMO_DOMAINS, SERVICES_FILE },
      demo: true,
      load: loadDemoData,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], {
      origin: server.baseUrl,
    });
    page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) policyViolations.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function open(pathAndQuery: string, ready: string): Promise<void> {
    await page.goto(`${server.baseUrl}${pathAndQuery}`);
    await page.waitForSelector(ready);
  }

  async function screenshot(name: string): Promise<void> {
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  async function apiJson(pathAndQuery: string): Promise<any> {
    const response = await page.request.get(`${server.baseUrl}${pathAndQuery}`);
    expect(response.status()).toBe(200);
    return response.json();
  }

  it('names the failing service on the overview', async () => {
    await open('/', 'canvas');
    const failing = page.locator('section', { hasText: 'Services that fail DMARC' });

    expect(await page.locator('#demo-banner').isVisible()).toBe(true);
    expect(await failing.locator('li a').allTextContents()).toEqual(['password-resets']);
    expect(await failing.textContent()).toContain('d=amazonses.com');
    expect(await failing.textContent()).toContain('Easy DKIM');
    const legend = await page.evaluate(() => {
      const chart = (window as any).Chart.getChart(document.querySelector('canvas'));
      return chart.data.datasets.map((dataset: any) => dataset.label);
    });
    expect(legend).toEqual([
      'Attributed, pass',
      'Unattributed, pass',
      'Attributed, fail',
      'Unattributed, fail',
    ]);
    expect(
      await page.locator('section', { hasText: 'Open recommendations' }).locator('code').count(),
    ).toBeGreaterThan(0);
    await screenshot('demo-overview');
  });

  it('shows the DKIM fix on Services', async () => {
    await page.getByRole('link', { name: 'Services', exact: true }).click();
    const card = page.locator('article[data-service="password-resets"]');
    await card.waitFor();
    const dkim = card.locator('li[data-code="dkim-provider-domain"]');

    expect(await card.locator('.badge').textContent()).toBe('fails DMARC');
    expect(await dkim.textContent()).toContain('DKIM passes for d=amazonses.com');
    expect(await dkim.locator('.fix').textContent()).toContain('Easy DKIM');
    // Failing services come first, so that this card is the first one on the page.
    expect(await page.locator('article').first().getAttribute('data-service')).toBe(
      'password-resets',
    );
    expect(await card.locator('canvas').count()).toBe(1);
    const tooltip = await card.locator('canvas').evaluate((canvas) => {
      const chart = (window as any).Chart.getChart(canvas);
      return chart.options.plugins.tooltip.callbacks.label({ dataIndex: 0 });
    });
    expect(tooltip).toMatch(/^0\.0% pass of [\d,]+ messages$/);
    await screenshot('services');

    await card.getByRole('link', { name: 'Sources' }).click();
    await page.waitForURL(/\/sources\?.*service=password-resets/);
    await page.waitForSelector('td a[href*="source_ip="]');
    expect(await page.locator('tbody tr td:first-child').allTextContents()).toEqual([
      '54.240.8.17',
      '54.240.8.33',
    ]);
    expect(await page.locator('#filters select[name="service"]').inputValue()).toBe(
      'password-resets',
    );
  });

  it('copies a DNS record from Recommendations', async () => {
    await open('/recommendations', '.dns-record');
    const block = page.locator('.dns-record').first();
    const record = (await block.locator('code').textContent())!;
    const value = /TXT "(.*)"$/.exec(record)![1];

    await block.getByRole('button', { name: /^Copy value/ }).click();
    await expect.poll(() => page.locator('#toast').textContent(), POLL).toContain('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(value);
    await block.getByRole('button', { name: /^Copy record/ }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText()), POLL).toBe(record);
    expect(value).toMatch(/^v=DMARC1; /);
    expect(await page.locator('section h2').allTextContents()).toEqual([
      'example.com',
      'example.net',
      'example.org',
    ]);
    await screenshot('recommendations');
  });

  it('replays a candidate policy in What-if', async () => {
    const services = await apiJson('/api/services');
    const resets = services.rows.find((row: any) => row.service === 'password-resets');
    await open('/whatif?domain=example.com', 'form[aria-label="Candidate policy"]');
    const policy = page.getByLabel('Candidate policy (TXT value)');

    expect(await policy.inputValue()).toBe('v=DMARC1; p=quarantine; adkim=r; aspf=r');
    await policy.fill('v=DMARC1; p=reject');
    await page.getByRole('button', { name: 'Replay' }).click();
    await page.waitForURL(/policy=v%3DDMARC1%3B\+p%3Dreject/);
    await page.waitForSelector('text=Candidate record:');
    const row = page.locator('tr', { has: page.locator('th', { hasText: 'password-resets' }) });
    const cells = await row.locator('td').allTextContents();

    expect(cells[0]).toBe(resets.messages.toLocaleString('en'));
    expect(cells[5]).toBe(resets.messages.toLocaleString('en'));
    expect(await page.locator('ul[aria-label="Notes"] li').count()).toBeGreaterThan(0);
    expect(await page.locator('.dns-record code').textContent()).toBe(
      '_dmarc.example.com. TXT "v=DMARC1; p=reject"',
    );
    await screenshot('whatif');

    await policy.fill('v=DMARC1; p=maybe');
    await page.getByRole('button', { name: 'Replay' }).click();
    await expect
      .poll(() => page.locator('[role="alert"]').textContent(), POLL)
      .toContain('p=maybe');
  });

  it('adds a source to a service from Sources', async () => {
    await open('/sources', 'td a[href*="source_ip="]');
    const row = () =>
      page.locator('tr', { has: page.locator('td:first-child', { hasText: /^192\.0\.2\.80$/ }) });
    expect(await row().locator('td').nth(2).textContent()).toBe('unattributed');
    await screenshot('sources');

    await page.getByRole('button', { name: 'Add 192.0.2.80 to a service' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Service').selectOption('corporate-mail');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await expect
      .poll(() => page.locator('#toast').textContent(), { timeout: 20_000 })
      .toContain('192.0.2.80 is now attributed to corporate-mail');

    await expect.poll(() => row().locator('td').nth(2).textContent(), POLL).toBe('corporate-mail');
    expect(await row().locator('td').nth(3).textContent()).toContain('ip 192.0.2.80');
    const catalog = await apiJson('/api/catalog');
    const corporate = catalog.services.find((service: any) => service.name === 'corporate-mail');
    expect(corporate.rules.ip).toEqual(['192.0.2.80']);
    await screenshot('sources-after-add');
  });

  it('lists records of one service', async () => {
    await open('/records?service=password-resets', 'td .badge');
    const services = await page.locator('tbody tr td:nth-child(6)').allTextContents();

    expect(await page.locator('h1').textContent()).toBe('Records of password-resets');
    expect(services.length).toBeGreaterThan(0);
    expect(new Set(services)).toEqual(new Set(['password-resets']));
    await screenshot('records-by-service');

    // The service filter carries over to the overview; the result filter is named as ignored.
    await open('/services?service=password-resets&result=fail', 'article');
    expect(await page.locator('#unapplied-note').textContent()).toBe(
      'Not applied here: DMARC result fail.',
    );
    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await page.waitForSelector('canvas');
    expect(await page.locator('#filters select[name="service"]').inputValue()).toBe(
      'password-resets',
    );
    expect(await page.locator('.kpi .value').nth(1).textContent()).toBe('0.0%');
  });

  it('shows catalog errors naming service and rule', async () => {
    await open('/settings', 'textarea[name="catalog"]');
    const before = await apiJson('/api/catalog');
    await page
      .getByLabel('Edit the catalog as YAML')
      .fill('services:\n  - name: billing\n    rules:\n      ip: [300.1.2.0/24]\n');
    await page.getByRole('button', { name: 'Save catalog' }).click();
    const errors = page.locator('.form-errors');

    await expect.poll(() => errors.textContent(), POLL).toContain('Invalid service catalog');
    expect(await errors.locator('li').allTextContents()).toContain(
      'Service "billing", rule ip[0]: invalid CIDR "300.1.2.0/24"',
    );
    expect((await apiJson('/api/catalog')).version).toBe(before.version);
    expect(await page.locator('table caption', { hasText: 'Service catalog' }).count()).toBe(1);
    await screenshot('settings-catalog-error');
  });

  it('keeps the analysis views usable on a narrow screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await open('/services', 'article[data-service="password-resets"]');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);

    expect(width).toBeLessThanOrEqual(390);
    await screenshot('services-narrow');
    await page.emulateMedia({ colorScheme: 'dark' });
    await open('/recommendations', '.dns-record');
    await screenshot('recommendations-dark');
  });

  it('ran no inline code and broke no policy', () => {
    expect(policyViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
