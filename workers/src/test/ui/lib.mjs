// What every browser step shares: Debian's Chromium driven headless by playwright-core, the
// Temporal Web UI's address, a screenshot per step, and one machine-readable line for the JUnit
// test (WebUiTest) after the lines a person reads.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Each step reads its own arguments; these come from WebUiTest's environment. */
export const webUi = required('WEB_UI_URL').replace(/\/$/, '');
const screenshots = required('SCREENSHOT_DIR');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const namespace = 'default';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (WebUiTest sets it)`);
    process.exit(2);
  }
  return value;
}

export function say(line) {
  console.log(line);
}

/**
 * Runs one step in a fresh headless browser. The step returns what it saw; that is printed as
 * the last line, `RESULT {json}`. On failure the page is photographed as it was (NAME-failed.png)
 * and the exit code is 1.
 */
export async function step(name, body) {
  mkdirSync(screenshots, { recursive: true });
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.setDefaultTimeout(20_000);
  let failed = false;
  try {
    const result = await body(page, {
      screenshot: async (suffix = '') => {
        const file = join(screenshots, `${name}${suffix}.png`);
        await page.screenshot({ path: file, fullPage: true });
        say(`screenshot ${file}`);
      },
    });
    console.log('RESULT ' + JSON.stringify(result));
  } catch (e) {
    failed = true;
    console.log(`${name} failed at ${page.url()}: ${e.message}`);
    await page.screenshot({ path: join(screenshots, `${name}-failed.png`), fullPage: true })
      .catch(() => {});
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}

/** The UI's page of one workflow's latest run; the UI redirects to its event history. */
export async function openWorkflow(page, workflowId) {
  await page.goto(`${webUi}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}`);
  await page.waitForURL(/\/history/);
  await page.getByRole('heading', { name: workflowId }).first().waitFor();
}

/** Polls `read` until `ok` holds for its answer or `limitMs` pass; returns the last answer. */
export async function poll(read, ok, limitMs, what) {
  const deadline = Date.now() + limitMs;
  let last;
  for (;;) {
    last = await read();
    if (ok(last)) {
      return last;
    }
    if (Date.now() > deadline) {
      throw new Error(`waited ${limitMs / 1000} s for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
