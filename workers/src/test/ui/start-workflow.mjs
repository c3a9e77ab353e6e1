// Scenario: an operator starts a workflow from the Web UI's "Start Workflow" form.
// Usage: node start-workflow.mjs WORKFLOW_ID TASK_QUEUE WORKFLOW_TYPE INPUT_JSON
// Prints what the UI sent and the run it started.
import { namespace, say, step, webUi } from './lib.mjs';

const [workflowId, taskQueue, workflowType, input] = process.argv.slice(2);
if (!workflowId || !taskQueue || !workflowType || input === undefined) {
  console.error('usage: node start-workflow.mjs WORKFLOW_ID TASK_QUEUE WORKFLOW_TYPE INPUT_JSON');
  process.exit(2);
}
JSON.parse(input); // the form takes a single JSON payload; say so here rather than in the UI

await step('start-workflow', async (page, { screenshot }) => {
  await page.goto(`${webUi}/namespaces/${namespace}/workflows`);
  await page.locator('a', { hasText: 'Start Workflow' }).click();
  await page.waitForURL(/\/start-workflow/);
  await page.getByLabel('Workflow ID').fill(workflowId);
  await page.getByLabel('Task Queue').fill(taskQueue);
  await page.getByLabel('Workflow Type').fill(workflowType);
  await page.locator('.cm-content').fill(input);
  // The input editor reformats its JSON when it loses focus, which moves the button under the
  // pointer: leave the editor first, as a person does before reaching for the button.
  await page.getByLabel('Workflow Type').focus();
  await page.getByText(/Task Queue is Active/).waitFor();
  say(`form filled: ${workflowId} on ${taskQueue}, ${workflowType}(${input})`);
  await screenshot('-form');
  const sent = page.waitForResponse((r) => r.request().method() === 'POST'
    && r.url().includes(`/workflows/${encodeURIComponent(workflowId)}`));
  await page.getByTestId('start-workflow-button').click();
  const response = await sent;
  const body = await response.json();
  if (!response.ok()) {
    throw new Error(`the server refused the start: ${response.status()} ${JSON.stringify(body)}`);
  }
  const toast = await page.getByText('Workflow started successfully').innerText();
  say(`the UI says "${toast}": run ${body.runId}`);
  await screenshot();
  const payload = JSON.parse(response.request().postData()).input.payloads[0];
  const sentInput = Buffer.from(payload.data, 'base64').toString();
  return { workflowId, runId: body.runId, sentInput };
});
