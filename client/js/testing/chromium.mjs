// Headless Chromium for the end-to-end tests: Debian's `chromium` (or
// $CHROMIUM) started with exactly our flags and a fresh profile, driven over
// the DevTools protocol by playwright-core (which downloads no browser).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { withTimeout, HANG_GUARD } from './support.mjs';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Starts Chromium and connects to it. Resolves with `{browser, page, pageErrors, stop}`:
 * `pageErrors` collects the page's uncaught errors and console errors,
 * `stop()` closes the browser and removes the profile. `args` are added to
 * the command line (e.g. `--ignore-certificate-errors-spki-list=HASH`).
 */
export async function launchChromium({ width = 1280, height = 940, args = [] } = {}) {
  await fs.access(CHROMIUM).catch(() => {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM)`);
  });
  const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'switchboard-chromium-'));
  const chrome = spawn(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${userDataDir}`,
      '--remote-debugging-address=127.0.0.1',
      '--remote-debugging-port=0',
      `--window-size=${width},${height}`,
      ...args,
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = once(chrome, 'exit');
  let browser;
  const stop = async () => {
    await browser?.close().catch(() => {});
    if (chrome.exitCode === null && chrome.signalCode === null) {
      chrome.kill('SIGTERM');
      const killer = setTimeout(() => chrome.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    // Chromium's helper processes may still be writing into the profile
    // for a moment after the browser exits: retry on ENOTEMPTY and friends.
    await fs.rm(userDataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  };
  try {
    const endpoint = await withTimeout(
      new Promise((resolve, reject) => {
        let buffered = '';
        chrome.stderr.setEncoding('utf8');
        chrome.stderr.on('data', (chunk) => {
          if (buffered === null) return; // found; keep draining the pipe
          buffered += chunk;
          const match = /DevTools listening on (ws:\/\/\S+)/.exec(buffered);
          if (match) {
            buffered = null;
            resolve(match[1]);
          }
        });
        exited.then(([code, signal]) => reject(new Error(`chromium exited early (${code ?? signal}): ${buffered}`)));
        chrome.once('error', reject);
      }),
      HANG_GUARD,
      'chromium did not start',
    );
    browser = await chromium.connectOverCDP(endpoint, { timeout: HANG_GUARD });
    const context = browser.contexts()[0];
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(HANG_GUARD);
    await page.setViewportSize({ width, height });
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console error: ${message.text()}`);
    });
    return { browser, page, pageErrors, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
