// The master's status page in a real browser (Debian's chromium, driven by playwright-core):
// three servers alive; SIGKILL one chunkserver and watch it turn suspect, then dead, and the
// repair backlog appear. Screenshots go to test-artifacts/ (desktop and phone widths).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GfsClient } from '../../src/client/client.js';
import { startProcCluster, waitFor, type ProcCluster } from '../helpers/proc-cluster.js';
import { ensureDebianPackages } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve('test-artifacts');

/** Debian's chromium with a fresh profile (playwright passes it as --user-data-dir). */
export async function launchChromium(): Promise<{ browser: BrowserContext; profile: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'gfs-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1280, height: 900 },
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
  return { browser, profile };
}

describe('master status page in a browser', () => {
  let cluster: ProcCluster;
  let client: GfsClient;
  let browser: BrowserContext | undefined;
  let profile = '';

  beforeAll(async () => {
    const why = ensureDebianPackages(['chromium']);
    if (why || !existsSync(CHROMIUM)) throw new Error(`chromium is needed for this test: ${why ?? `${CHROMIUM} not found`}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    cluster = await startProcCluster({
      chunkservers: 3,
      heartbeatMs: 200,
      chunkSize: 1024 * 1024,
      // suspect after 1 s of silence, dead after 7 s: the page (refreshing every 2 s) sees both.
      masterArgs: ['--suspect-after-ms', '1000', '--dead-after-ms', '7000'],
    });
    client = new GfsClient({ master: cluster.master.addr, secretFile: cluster.clientKeyFile });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 3, '3 live chunkservers');
    // Some data, so that losing a server leaves chunks below their goal.
    for (let i = 0; i < 6; i++) {
      const attr = await client.create(`/page-${i}`, 0o100644);
      await client.write(attr.ino, 0, randomBytes(2 * 1024 * 1024 + 4096));
    }
    ({ browser, profile } = await launchChromium());
  }, 15 * 60_000);

  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await client?.close();
    await cluster?.stop();
  });

  const row = (page: Page, addr: string, state: string) => page.locator(`tr[data-addr="${addr}"][data-state="${state}"]`);

  it('shows three servers alive, then a killed one suspect, dead, and the repair backlog', async () => {
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${cluster.master.http}/`, { waitUntil: 'load' });
    await page.waitForSelector('body[data-loaded="1"]', { timeout: 15_000 });
    await expect.poll(() => page.locator('tr[data-state="alive"]').count(), { timeout: 15_000 }).toBe(3);
    expect(await page.locator('#servers-alive').textContent()).toBe('3 alive');
    expect(Number((await page.locator('#files').textContent())!.replace(/,/g, ''))).toBe(6);
    expect(await page.locator('#health').textContent()).toBe('healthy');
    expect(await page.locator('#repair-backlog').textContent()).toBe('0');

    const victim = cluster.chunkservers[1]!;
    await cluster.kill(victim, 'SIGKILL');
    await row(page, victim.addr, 'suspect').waitFor({ timeout: 15_000 });
    expect(await page.locator('#health').textContent()).toBe('degraded');
    await row(page, victim.addr, 'dead').waitFor({ timeout: 30_000 });
    // Only two servers are left for a goal of 3: every chunk waits for a new home.
    await expect.poll(async () => Number((await page.locator('#repair-backlog').textContent())!.replace(/,/g, '')), { timeout: 20_000 }).toBeGreaterThan(0);
    expect(Number((await page.locator('#under-replicated').textContent())!.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(await page.locator('tr[data-state="alive"]').count()).toBe(2);
    // The events list says what happened to that server.
    const events = page.locator(`#events li[data-server]`);
    await expect.poll(async () => (await events.allTextContents()).join('\n'), { timeout: 5_000 }).toMatch(/suspect → dead/);
    expect((await events.allTextContents()).join('\n')).toMatch(/alive → suspect/);
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });

    // A phone: no horizontal scrolling, every server still listed.
    const phone = await browser!.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${cluster.master.http}/`, { waitUntil: 'load' });
    await phone.waitForSelector('body[data-loaded="1"]', { timeout: 15_000 });
    expect(await phone.locator('tr[data-addr]').count()).toBe(3);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await phone.screenshot({ path: join(ARTIFACTS, 'status-page-phone.png'), fullPage: true });
    await phone.close();
    await page.close();
  });

  it('a chunkserver status page renders its numbers', async () => {
    const page = await browser!.newPage();
    await page.setViewportSize({ width: 1000, height: 700 });
    await page.goto(`${cluster.chunkservers[0]!.http}/`, { waitUntil: 'load' });
    await expect.poll(() => page.locator('#sub').textContent(), { timeout: 10_000 }).toMatch(/registered with master/);
    expect(await page.locator('.card').count()).toBeGreaterThan(5);
    await page.screenshot({ path: join(ARTIFACTS, 'chunkserver-page.png') });
    await page.close();
  });
});
