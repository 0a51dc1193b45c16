// Headless Chromium for the framework examples' tests: open a page an
// example serves and return what its script reports (`window.result`).
// Debian's chromium, driven by playwright-core; a missing browser skips the
// page tests outside CI and fails them in CI.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing in CI`);

/**
 * Load `url` in a fresh headless Chromium and await `window.result`.
 * @param {string} url
 * @param {{ timeout?: number }} [options]
 * @returns {Promise<any>}
 */
export async function pageResult(url, { timeout = 15000 } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeout);
    await page.goto(url);
    await page.waitForFunction(() => 'result' in window);
    return await page.evaluate(() => /** @type {any} */ (window).result);
  } finally {
    await browser.close();
  }
}
