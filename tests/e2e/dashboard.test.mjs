// The admin dashboard (GET / on the admin port) rendered by a real browser: Debian's headless
// Chromium loads the page, which polls `status` and draws one `section.region[data-region]` per
// region with a row `tr[data-deployment]` and a `.state` badge per deployment. Three regions, put
// into three different states first: eastus cooling (429), westeurope circuit open (three 503s in
// a row), japaneast available. Then a screenshot goes to artifacts/dashboard.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

import { CHAT_MODEL, CLIENT_KEY, startStack } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.resolve(here, '../../artifacts');
const SCREENSHOT = path.join(ARTIFACTS, 'dashboard.png');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const REGIONS = [
  { name: 'eastus', priority: 0 },
  { name: 'westeurope', priority: 1 },
  { name: 'japaneast', priority: 2 },
];
const COOLDOWN_MS = 60_000;
const messages = [{ role: 'user', content: 'Hello, dashboard.' }];

let stack;
const profiles = [];

before(async () => {
  stack = await startStack({
    regions: REGIONS,
    // Long enough that nothing recovers while the browser is looking.
    proxy: { health: { open_ms: 60_000, failure_threshold: 3 } },
  });
});

after(async () => {
  await stack?.stop();
  for (const dir of profiles) await rm(dir, { recursive: true, force: true });
});

function requireChromium() {
  if (!existsSync(CHROMIUM)) {
    assert.fail(
      `Chromium not found at ${CHROMIUM}: the dashboard test needs it. ` +
        'Install it with `apt-get install chromium` (scripts/setup.sh does), or set CHROMIUM_BIN.',
    );
  }
}

// Runs headless Chromium with a fresh profile; resolves with its stdout.
async function chromium(args) {
  const profile = await mkdtemp(path.join(tmpdir(), 'spillway-chromium-'));
  profiles.push(profile);
  const argv = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    `--user-data-dir=${profile}`,
    '--virtual-time-budget=5000',
    ...args,
  ];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, argv, { timeout: 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`chromium ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// The page renders after its first `status` fetch: dump the DOM until the regions are there.
async function dumpDashboard() {
  const url = `${stack.adminOrigin}/`;
  let dom = '';
  for (let i = 0; i < 3; i++) {
    dom = await chromium(['--dump-dom', url]);
    if ((dom.match(/<section [^>]*data-region=/g) ?? []).length >= REGIONS.length) return dom;
  }
  assert.fail(`the dashboard never rendered its regions; last DOM:\n${dom}`);
}

// The <section> of one region and the badge (class list and text) of each of its rows.
function regionOf(dom, name) {
  const m = dom.match(new RegExp(`<section class="region" data-region="${name}">(.*?)</section>`, 's'));
  assert.ok(m, `no section.region[data-region=${name}] in the DOM`);
  const rows = {};
  for (const row of m[1].matchAll(/<tr data-deployment="([^"]+)">(.*?)<\/tr>/gs)) {
    const badge = row[2].match(/<span class="state ([^"]*)">([^<]*)<\/span>/);
    assert.ok(badge, `row ${row[1]} has no .state badge`);
    rows[row[1]] = { state: badge[1], text: badge[2] };
  }
  return { html: m[1], rows };
}

test('the dashboard shows every region and a state badge per deployment (cooling, open, available)', async () => {
  requireChromium();
  const client = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });

  // eastus throttles: the request is answered by westeurope, eastus cools down for 60 s.
  await stack.setFault('eastus', { mode: 'throttle', retry_after_ms: COOLDOWN_MS });
  const first = await client.chat.completions.create({ model: CHAT_MODEL, messages }).withResponse();
  assert.equal(first.response.headers.get('x-spillway-region'), 'westeurope');
  // westeurope fails three times in a row: its circuit opens; japaneast answers each time.
  await stack.setFault('westeurope', { mode: 'error', status: 503 });
  for (let i = 0; i < 3; i++) {
    const r = await client.chat.completions.create({ model: CHAT_MODEL, messages }).withResponse();
    assert.equal(r.response.headers.get('x-spillway-region'), 'japaneast');
  }
  const states = Object.fromEntries((await stack.status()).deployments.map((d) => [d.name, d.state]));
  assert.deepEqual(states, {
    'gpt4o-eastus': 'cooling',
    'emb-eastus': 'available',
    'gpt4o-westeurope': 'open',
    'emb-westeurope': 'available',
    'gpt4o-japaneast': 'available',
    'emb-japaneast': 'available',
  });

  const dom = await dumpDashboard();
  const sections = [...dom.matchAll(/<section class="region" data-region="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(sections, REGIONS.map((r) => r.name));

  const eastus = regionOf(dom, 'eastus');
  assert.deepEqual(Object.keys(eastus.rows), ['gpt4o-eastus', 'emb-eastus']);
  assert.equal(eastus.rows['gpt4o-eastus'].state, 'cooling');
  const m = eastus.rows['gpt4o-eastus'].text.match(/^cooling (\d+(?:\.\d)?) s$/);
  assert.ok(m, `cooling badge text: ${eastus.rows['gpt4o-eastus'].text}`);
  assert.ok(Number(m[1]) > 0 && Number(m[1]) <= COOLDOWN_MS / 1000, `cooldown ${m[1]} s`);
  assert.deepEqual(eastus.rows['emb-eastus'], { state: 'available', text: 'available' });

  const westeurope = regionOf(dom, 'westeurope');
  assert.deepEqual(westeurope.rows, {
    'gpt4o-westeurope': { state: 'open', text: 'open' },
    'emb-westeurope': { state: 'available', text: 'available' },
  });
  const japaneast = regionOf(dom, 'japaneast');
  assert.deepEqual(japaneast.rows, {
    'gpt4o-japaneast': { state: 'available', text: 'available' },
    'emb-japaneast': { state: 'available', text: 'available' },
  });
  // The share column: japaneast made 3 of the model's 8 attempts of the last minute
  // (eastus 1, westeurope 1 + 3, japaneast 3): 38 %.
  assert.match(japaneast.html, /38% · 3 req · 0 in flight/);
  assert.match(westeurope.html, /50% · 4 req · 0 in flight/);
  assert.match(dom, /3 regions · 2 models · 4\/6 deployments available/);
  assert.match(dom, /<div id="error"[^>]*><\/div>/, 'the page shows an error');
});

test('a screenshot of the dashboard is written to artifacts/dashboard.png', async () => {
  requireChromium();
  await mkdir(ARTIFACTS, { recursive: true });
  await rm(SCREENSHOT, { force: true });
  await chromium([`--screenshot=${SCREENSHOT}`, '--window-size=1400,900', `${stack.adminOrigin}/`]);
  assert.ok(existsSync(SCREENSHOT), `no ${SCREENSHOT}`);
  const png = await readFile(SCREENSHOT);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'not a PNG');
  assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1400, 900], 'PNG size');
  const { size } = await stat(SCREENSHOT);
  // A blank 1400x900 page compresses to ~5 KB; the rendered dashboard is several times that.
  assert.ok(size > 20_000, `screenshot is only ${size} bytes`);
});
