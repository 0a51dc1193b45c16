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
    // `window.result` may be a promise, and evaluate waits for it without a
    // timeout of its own: a page that never settles fails here instead.
    return await page.evaluate(
      (ms) =>
        Promise.race([
          /** @type {any} */ (window).result,
          new Promise((_, fail) => setTimeout(() => fail(new Error(`window.result still pending after ${ms} ms`)), ms)),
        ]),
      timeout,
    );
  } finally {
    await browser.close();
  }
}
