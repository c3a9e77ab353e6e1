// Scenario: an operator finds a VM's workflows in the Web UI by typing the VmName search
// attribute into the workflow list's query box.
// Usage: node find-by-vm.mjs VM
// Prints the workflow IDs the list shows for VmName="VM", and the server's answer to that query.
import { namespace, poll, say, step, webUi } from './lib.mjs';

const vm = process.argv[2];
if (!/^[\w.-]{1,64}$/.test(vm ?? '')) {
  console.error('usage: node find-by-vm.mjs VM (letters, digits, . _ -)');
  process.exit(2);
}
const query = `VmName="${vm}"`;

await step('find-by-vm', async (page, { screenshot }) => {
  await page.goto(`${webUi}/namespaces/${namespace}/workflows`);
  await page.getByTestId('toggle-manual-query').click();
  await page.getByTestId('manual-search-input').fill(query);
  const listed = page.waitForResponse((r) => /\/workflows\?/.test(r.url())
    && new URL(r.url()).searchParams.get('query')?.includes(`VmName="${vm}"`));
  await page.getByTestId('manual-search-button').click();
  const answer = await (await listed).json();
  const fromServer = (answer.executions ?? []).map((e) => e.execution.workflowId).sort();
  say(`the server answered ${query} with ${fromServer.join(', ') || 'nothing'}`);
  // The table re-renders after the answer: wait until it shows exactly that answer.
  const shown = await poll(() => shownWorkflowIds(page),
    (ids) => JSON.stringify(ids) === JSON.stringify(fromServer), 15_000,
    'the list to show the answer');
  say(`the workflow list filtered by ${query} shows ${shown.join(', ')}`);
  await screenshot();
  return { query, shown, fromServer };
});

/** The Workflow ID column: links to a run's history whose text is the workflow ID. */
async function shownWorkflowIds(page) {
  const links = await page.locator('table a[href*="/workflows/"]').evaluateAll((as) => as
    .map((a) => ({ text: a.innerText.trim(), href: a.getAttribute('href') })));
  const ids = links
    .filter(({ text, href }) => href.includes(`/workflows/${encodeURIComponent(text)}/`))
    .map(({ text }) => text);
  return [...new Set(ids)].sort();
}
