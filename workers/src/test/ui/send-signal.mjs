// Scenario: an operator sends a signal to a running workflow from the Web UI's
// "More Actions" > "Send a Signal".
// Usage: node send-signal.mjs WORKFLOW_ID SIGNAL INPUT_JSON
// Prints the signal the UI sent and the server's answer.
import { openWorkflow, say, step } from './lib.mjs';

const [workflowId, signal, input] = process.argv.slice(2);
if (!workflowId || !/^\w{1,64}$/.test(signal ?? '') || input === undefined) {
  console.error('usage: node send-signal.mjs WORKFLOW_ID SIGNAL INPUT_JSON');
  process.exit(2);
}
JSON.parse(input);

await step('send-signal', async (page, { screenshot }) => {
  // With a worker polling, the UI lists the workflow's signals in a select: it learns them from
  // the SDK's metadata query as the page loads; without an answer, it asks for the name.
  const metadata = page.waitForResponse((r) => r.url().includes('__temporal_workflow_metadata'))
    .catch(() => null);
  await openWorkflow(page, workflowId);
  say(`metadata query: ${(await metadata)?.status() ?? 'no answer'}`);
  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByTestId('signal-button').filter({ visible: true }).click();
  const modal = page.locator('#signal-confirmation-modal').filter({ visible: true });
  await modal.getByRole('heading', { name: 'Send a Signal' }).waitFor();
  const select = modal.getByTestId('signal-select-button');
  await select.or(modal.getByTestId('signal-name')).waitFor();
  const offered = await select.isVisible() ? await pickSignal(modal, select) : null;
  if (offered === null) {
    // By test id, not label: the page holds two copies of this form sharing their element ids.
    await modal.getByTestId('signal-name').fill(signal);
  }
  await modal.locator('.cm-content').fill(input);
  await modal.getByRole('heading', { name: 'Send a Signal' }).click(); // leave the editor
  say(`signal form: ${signal}(${input})`
    + (offered ? `; the UI offered ${offered.join(', ')}` : ''));
  await screenshot('-form');
  const sent = page.waitForResponse((r) => r.request().method() === 'POST'
    && r.url().includes(`/signal/${signal}`));
  await modal.getByTestId('confirm-modal-button').click();
  const response = await sent;
  if (!response.ok()) {
    throw new Error(`the server refused the signal: ${response.status()} ${await response.text()}`);
  }
  await modal.waitFor({ state: 'hidden' });
  say(`signal ${signal} sent to ${workflowId}: HTTP ${response.status()}`);
  await screenshot();
  return { workflowId, signal, offered, status: response.status() };
});

/** Chooses the signal in the UI's list of the workflow's signals; returns that list. */
async function pickSignal(modal, select) {
  await select.click();
  const options = modal.getByRole('option');
  await options.first().waitFor();
  const names = (await options.allInnerTexts()).map((t) => t.split('\n')[0].trim());
  await options.filter({ hasText: new RegExp(`^\\s*${signal}\\b`) }).first().click();
  return names;
}
