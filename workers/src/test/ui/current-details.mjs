// Scenario: an operator watches a workflow's live progress in the Web UI: the "Current Details"
// the workflow sets (Workflow.setCurrentDetails), on the workflow's "User Metadata" tab.
// Usage: node current-details.mjs WORKFLOW_ID EXPECTED_REGEX
// Prints the details as the UI renders them once they match EXPECTED_REGEX (pressing R, the UI's
// refresh key, between looks).
import { openWorkflow, poll, say, step } from './lib.mjs';

const [workflowId, expected] = process.argv.slice(2);
if (!workflowId || !expected) {
  console.error('usage: node current-details.mjs WORKFLOW_ID EXPECTED_REGEX');
  process.exit(2);
}
const pattern = new RegExp(expected);

await step('current-details', async (page, { screenshot }) => {
  await openWorkflow(page, workflowId);
  await page.locator('#user-metadata-tab').filter({ visible: true }).click();
  await page.getByRole('heading', { name: 'Current Details' }).waitFor();
  const details = await poll(async () => {
    await page.keyboard.press('r');
    return rendered(page, 'background');
  }, (text) => pattern.test(text), 30_000, `Current Details matching /${expected}/`);
  say(`Current Details of ${workflowId}:\n${details}`);
  const summaries = await poll(async () => renderedAll(page, 'primary'),
    (texts) => texts.some((t) => t.length > 0), 10_000, 'the Summary panel');
  say(`Summary and details panels of ${workflowId}: ${JSON.stringify(summaries)}`);
  await screenshot();
  return { workflowId, details, summaries };
});

/** The texts of every rendered block on this theme (the summary and the static details). */
async function renderedAll(page, theme) {
  const frames = page.frames().filter((f) => f.url().includes('/render?')
    && new URL(f.url()).searchParams.get('overrideTheme') === theme);
  const texts = [];
  for (const frame of frames) {
    try {
      texts.push((await frame.locator('body').innerText({ timeout: 5_000 })).trim());
    } catch (e) {
      if (!frame.isDetached()) {
        throw e;
      }
    }
  }
  return texts;
}

/**
 * The UI renders each markdown block in an iframe of its own (/render?content=...); the current
 * details are the one on the "background" theme, the summary and details on "primary". Each new
 * content replaces its iframe, so one may go while it is read: then it reads as nothing yet.
 */
async function rendered(page, theme) {
  const frame = page.frames().find((f) => f.url().includes('/render?')
    && new URL(f.url()).searchParams.get('overrideTheme') === theme);
  try {
    return frame ? (await frame.locator('body').innerText({ timeout: 5_000 })).trim() : '';
  } catch (e) {
    if (frame.isDetached()) {
      return '';
    }
    throw e;
  }
}
