import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isCI, postgresAvailable } from '../helpers/database.js';
import { ADMIN_PASSWORD, csvObjects, startTestServer, type TestServer } from '../serve/harness.js';
import { seedDashboardData } from '../serve/seed.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(import.meta.dirname, '..', '..', 'test-artifacts', 'screenshots');

function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if (isCI) throw new Error(`Chromium is required in CI at ${CHROMIUM}: apt-get install chromium`);
  return false;
}

const available = chromiumAvailable() && (await postgresAvailable());

describe.skipIf(!available)('dashboard in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let limitQuarantinedId: number;
  const dialogs: string[] = [];
  const policyViolations: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startTestServer('postgres');
    ({ limitQuarantinedId } = await seedDashboardData(server.runtime));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-gpu',
      ],
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
    await expect
      .poll(() => page.locator('#login-error').textContent())
      .toContain('Wrong user name or password');

    await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/reports\?range=all$/);
    await page.waitForSelector('table tbody tr');
    expect(await page.locator('h1').textContent()).toBe('Reports');
  });

  it('opens each view with a screenshot', async () => {
    const views: Array<[string, string, string]> = [
      ['overview', '/?range=all', 'canvas'],
      ['reports', '/reports?range=all', 'td a[href^="/reports/"]'],
      ['sources', '/sources?range=all', 'td a[href*="source_ip="]'],
      ['records', '/records?range=all', 'td .badge'],
      ['quarantine', '/quarantine?range=all', 'button[aria-label^="Reprocess input"]'],
      ['settings', '/settings', 'text=API tokens'],
      ['services', '/services?range=all', 'text=Service attribution is not available yet.'],
      [
        'recommendations',
        '/recommendations?range=all',
        'text=Recommendations are not available yet.',
      ],
      ['whatif', '/whatif?range=all', 'text=The what-if policy simulator is not available yet.'],
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
    await open('/?range=all', 'canvas');
    const tooltip = await page.evaluate(() => {
      const canvas = document.querySelector('canvas');
      const chart = (window as any).Chart.getChart(canvas);
      const callbacks = chart.options.plugins.tooltip.callbacks;
      const fail = chart.data.datasets[1];
      return [
        callbacks.label({ dataIndex: 0, parsed: { y: fail.data[0] }, dataset: fail }),
        callbacks.footer([{ dataIndex: 0 }]),
      ];
    });
    expect(tooltip).toEqual(['DMARC fail: 14 (40.0%)', 'Total: 35 messages']);

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
    await expect.poll(() => page.locator('.pager span').first().textContent()).toBe('1–4 of 4');

    await page.getByLabel('Disposition').selectOption('quarantine');
    await page.waitForURL(/disposition=quarantine/);
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
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
      .poll(() => page.locator('tbody tr td a').first().textContent())
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
      .poll(() => page.locator('#toast').textContent())
      .toContain('Read: 1 reports stored');
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
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

describe.skipIf(!available)('demo mode in Chromium', () => {
  it('shows the demo banner without a login', async () => {
    const server = await startTestServer('postgres', { demo: true });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${server.baseUrl}/quarantine`);
      await page.waitForSelector('text=Nothing is quarantined.');

      expect(await page.locator('#demo-banner').isVisible()).toBe(true);
      expect(await page.locator('#demo-banner').textContent()).toContain('Demo mode');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'demo-banner.png') });
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
