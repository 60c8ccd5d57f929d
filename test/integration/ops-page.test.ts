// The ops page in real headless Chromium against a running pipeline, on the admin listener: it asks for
// the admin token and, logged in, shows the numbers the JSON API
// reports, highlights a stalled partition, lists a dead letter with its error, and its re-drive button
// moves the letter out of the dead letters (resolved, the event applied). A screenshot is saved under
// test-output/ for the CI artifacts.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { deadLetters } from '../../src/state/dead-letters';
import { EVENTS } from '../../src/instrumentation';
import type { Processor } from '../../src/runtime/processor';
import { cleanupAll, eventually, onCleanup } from '../helpers';
import { COUNTERS, counterEvent, type CounterDoc } from '../scenarios/fixtures/counter';
import { startOpsRig, type OpsRig } from '../scenarios/harness';

afterAll(cleanupAll);

const OUTPUT = path.join(__dirname, '..', '..', 'test-output');
const SCREENSHOT = path.join(OUTPUT, 'ops-page.png');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STALL_AFTER_MS = 2000;

interface ApiPartition {
  topic: string;
  partition: number;
  committed: string | null;
  end: string;
  lag: number;
  stalled: boolean;
}

let processor: Processor;
let base: string;
let auth: OpsRig['auth'];
let token: string;
let stage: string;
let input: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
let send: OpsRig['send'];

beforeAll(async () => {
  ({ processor, admin: base, auth, token, stage, input, send } = await startOpsRig('ops', STALL_AFTER_MS));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  onCleanup(() => browser.close());
  page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
});

async function apiPartitions(): Promise<ApiPartition[]> {
  const body = (await (await fetch(`${base}/ops/api/stages`, { headers: auth })).json()) as {
    stages: { name: string; partitions: ApiPartition[] }[];
  };
  return body.stages.find((s) => s.name === stage)!.partitions;
}

/** The partition rows as the page shows them: [topic/partition, committed, end, lag, stalled]. */
function pageRows(): Promise<string[][]> {
  return page.$$eval(`[data-stage="${stage}"] tr[data-partition]`, (rows) =>
    rows.map((r) => [
      r.getAttribute('data-partition') ?? '',
      ...[...r.querySelectorAll('td')].slice(2, 5).map((td) => td.textContent ?? ''),
      r.getAttribute('data-stalled') ?? '',
    ]),
  );
}

const apiRows = (parts: ApiPartition[]) =>
  parts.map((p) => [
    `${p.topic}/${p.partition}`,
    p.committed ?? '–',
    p.end,
    String(p.lag),
    String(p.stalled),
  ]);

test('the page shows the stages, a stalled partition and a dead letter, and re-drives it', async () => {
  const fatalUntil = Date.now() + 5000;
  const poisoned = `poison-${stage}`;
  await send([
    ...Array.from({ length: 6 }, (_, i) => counterEvent(`ok-${i}-${stage}`, 0)),
    counterEvent(poisoned, 0, { fatalUntil }),
  ]);
  // An out-of-order delivery as the stage would report it, so the report has something to show.
  processor.instrumentation.emit(EVENTS.EVENT_HANDLED, {
    stage,
    topic: input,
    partition: 0,
    offset: '999999',
    key: 'late-entity',
    eventId: 'late-1',
    traceId: undefined,
    tenantId: 't1',
    occurredAt: Date.now() - 60_000,
    consumedAt: Date.now(),
    readStartedAt: undefined,
    decideStartedAt: undefined,
    writeStartedAt: undefined,
    emitStartedAt: undefined,
    finishedAt: Date.now(),
    attempt: 1,
    outcome: 'applied',
    outOfOrder: true,
    errorCode: undefined,
    errorMessage: undefined,
    emitted: [],
  });

  // Without the token the page is a log-in form; a wrong token is refused, the right one opens the page.
  const first = await page.goto(`${base}/ops`);
  expect(first?.status()).toBe(401);
  await page.fill('#token', 'not-the-token');
  await page.click('button[type="submit"]');
  await page.waitForSelector('#result:has-text("log-in refused")');
  await page.fill('#token', token);
  await page.click('button[type="submit"]');
  await page.waitForSelector(`[data-stage="${stage}"]`);

  // Once the stage is idle the page and the API agree partition by partition.
  await eventually(
    async () => {
      const parts = await apiPartitions();
      if (parts.some((p) => p.lag > 0)) return undefined;
      const [want, got] = [apiRows(parts), await pageRows()];
      return JSON.stringify(want) === JSON.stringify(got) ? true : undefined;
    },
    30_000,
    'page rows to equal the API',
  );

  // The dead letter shows under its stage with its error.
  const letterRow = page.locator(`tr[data-key="${poisoned}"]`);
  await letterRow.waitFor({ timeout: 15_000 });
  await expect(letterRow.locator('[data-field=code]').textContent()).resolves.toBe('HANDLER_FAILED');
  await expect(letterRow.textContent()).resolves.toContain('planned fatal failure');

  // The out-of-order report shows what provenance holds.
  const ooo = page.locator(`[data-ooo-stage="${stage}"]`);
  await ooo.waitFor({ timeout: 15_000 });
  await expect(ooo.locator('[data-field=detected]').textContent()).resolves.toBe('1');
  await expect(ooo.locator('[data-field=corrected]').textContent()).resolves.toBe('1');

  // A slow event holds its partition past the stall window: the row is highlighted.
  await send([counterEvent(`slow-${stage}`, 0, { delayMs: STALL_AFTER_MS * 4 })]);
  const stalledRow = page.locator(`[data-stage="${stage}"] tr.stalled`);
  await stalledRow.waitFor({ timeout: STALL_AFTER_MS * 4 });
  await expect(page.locator('[data-testid=stalled-badge]').textContent()).resolves.toBe('1 stalled');
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // Re-drive once the failure has healed: the letter leaves the list, resolved, and the event applies.
  await new Promise((r) => setTimeout(r, Math.max(0, fatalUntil - Date.now() + 200)));
  await letterRow.locator('button[data-action=redrive]').click();
  await eventually(
    async () => ((await letterRow.count()) === 0 ? true : undefined),
    STALL_AFTER_MS * 6,
    'the letter to leave the page',
  );
  const letter = await deadLetters(processor.context.db).findOne({ key: poisoned });
  expect(letter).toMatchObject({ status: 'resolved', redrives: 1 });
  const counter = await processor.context.db.collection<CounterDoc>(COUNTERS).findOne({ _id: poisoned });
  expect(counter?.count).toBe(1);
  await expect(page.locator('#redrive-result').textContent()).resolves.toContain('re-drove 1 letter');

  // And after the catch-up the stall is gone from the page too.
  await eventually(
    async () => ((await stalledRow.count()) === 0 ? true : undefined),
    STALL_AFTER_MS * 6,
    'the stall to clear',
  );
  expect(pageErrors).toEqual([]);
  expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
});
