// Acceptance scenarios of the router (SPEC §4): priority tiers, weights, cooldowns on 429, the
// circuit breaker on 5xx / connect failures, the all-throttled 429 and data zones — each driven by
// the official SDK with its own retries disabled (maxRetries: 0), so every failure spillway does not
// absorb is visible to the test. Upstream traffic is counted by the mock's per-region stats.
//
// Every scenario gets a fresh stack (no health state leaks between scenarios). Sleeps appear only
// where the scenario is about time (cooldown, open circuit); everything else runs as fast as the
// machine allows. The quota-spreading scenario (40 s) lives in quota-spreading.test.mjs.

import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import OpenAI, { APIError, RateLimitError } from 'openai';

import { CHAT_MODEL, CLIENT_KEY, startStack } from './harness.mjs';

const messages = [{ role: 'user', content: 'Say hello.' }];
const ZONE_HEADER = 'x-spillway-data-zone';

let stack;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

async function freshStack(options) {
  stack = await startStack(options);
  return new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const now = () => performance.now();

/**
 * One chat completion through the SDK. Never throws: { ok, region, deployment, attempts, status,
 * error, sentAt, doneAt } (times from performance.now()).
 */
async function chat(openai, { headers } = {}) {
  const sentAt = now();
  try {
    const { response } = await openai.chat.completions
      .create({ model: CHAT_MODEL, messages }, headers ? { headers } : undefined)
      .withResponse();
    return {
      ok: true,
      status: response.status,
      region: response.headers.get('x-spillway-region'),
      deployment: response.headers.get('x-spillway-deployment'),
      attempts: Number(response.headers.get('x-spillway-attempts')),
      sentAt,
      doneAt: now(),
    };
  } catch (error) {
    return { ok: false, status: error?.status, error, sentAt, doneAt: now() };
  }
}

function describeFailures(results) {
  return results
    .filter((r) => !r.ok)
    .slice(0, 5)
    .map((r) => `${r.error?.constructor?.name} ${r.status}: ${r.error?.message}`)
    .join('\n');
}

function assertAllOk(results, what) {
  const failed = results.filter((r) => !r.ok);
  assert.equal(failed.length, 0, `${what}: ${failed.length} of ${results.length} client calls failed:\n${describeFailures(results)}`);
}

/** `clients` concurrent closed loops, each sending one request after the other, for `durationMs`. */
async function closedLoop(openai, { clients, durationMs }) {
  const results = [];
  const end = now() + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (now() < end) results.push(await chat(openai));
    }),
  );
  return results;
}

/** Exactly `total` requests, at most `clients` in flight at a time. */
async function fixedCount(openai, { total, clients }) {
  const results = [];
  let started = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (started < total) {
        started += 1;
        results.push(await chat(openai));
      }
    }),
  );
  return results;
}

/** Sequential requests. */
async function sequential(openai, count) {
  const results = [];
  for (let i = 0; i < count; i += 1) results.push(await chat(openai));
  return results;
}

/**
 * One request every `intervalMs` (each waits for the previous answer) until one is answered by
 * `region` or `deadline` (performance.now() time) passes. Returns { hit, before } where hit is the
 * first result from `region` (or undefined) and before every earlier result.
 */
async function pollUntilRegion(openai, region, { intervalMs = 100, deadline }) {
  const before = [];
  while (now() < deadline) {
    const tick = now();
    const r = await chat(openai);
    if (r.ok && r.region === region) return { hit: r, before };
    before.push(r);
    await sleep(tick + intervalMs - now());
  }
  return { hit: undefined, before };
}

const statusOf = (s, code) => s.by_status[String(code)] ?? 0;

async function deploymentStatus(name) {
  const status = await stack.status();
  const row = status.deployments.find((d) => d.name === name);
  assert.ok(row, `no /status row for ${name}: ${JSON.stringify(status.deployments)}`);
  return row;
}

// ---------------------------------------------------------------------------------------------
// 1. Active-passive: primary (priority 0), secondary (priority 1), same model.
// ---------------------------------------------------------------------------------------------

test('1a active-passive: a healthy primary gets all the traffic', async () => {
  const openai = await freshStack();
  const results = await fixedCount(openai, { total: 50, clients: 5 });

  assertAllOk(results, 'healthy primary');
  assert.deepEqual(
    results.map((r) => `${r.region}/${r.deployment}/${r.attempts}`).filter((s) => s !== 'primary/gpt4o-primary/1'),
    [],
    'every answer must come from the primary in one attempt',
  );
  const primary = await stack.stats('primary');
  const secondary = await stack.stats('secondary');
  assert.equal(primary.requests, 50);
  assert.equal(statusOf(primary, 200), 50);
  assert.equal(secondary.requests, 0, 'the passive secondary must not get traffic while the primary is healthy');
});

test('1b active-passive: primary 429 (retry-after-ms 3000) → a handful of 429s, no client errors, primary back after the cooldown', async (t) => {
  const CLIENTS = 10;
  const COOLDOWN_MS = 3000;
  const openai = await freshStack();
  await stack.setFault('primary', { mode: 'throttle', retry_after_ms: COOLDOWN_MS });

  // Every 429 the primary sends is answered after this instant, so its cooldown lasts at least
  // until t0 + 3000.
  const t0 = now();
  const load = await closedLoop(openai, { clients: CLIENTS, durationMs: 2000 });
  assertAllOk(load, 'while the primary throttles');
  assert.ok(load.length >= 2 * CLIENTS, `only ${load.length} requests in 2 s`);
  assert.ok(load.every((r) => r.region === 'secondary'), 'answers during the throttle come from the secondary');

  const primary = await stack.stats('primary');
  const secondary = await stack.stats('secondary');
  const throttled = statusOf(primary, 429);
  assert.equal(primary.requests, throttled, `the primary answered only 429s: ${JSON.stringify(primary.by_status)}`);
  assert.ok(throttled >= 1, 'the primary was never tried');
  assert.ok(
    throttled <= CLIENTS,
    `the primary got ${throttled} requests (all 429) for ${load.length} client requests: at most the ${CLIENTS} ` +
      'in flight when the first 429 arrived may reach it; later ones must skip it while it cools down',
  );
  assert.equal(statusOf(secondary, 200), load.length);
  assert.equal(
    load.filter((r) => r.attempts === 2).length,
    throttled,
    'exactly the requests that met a 429 took two attempts',
  );
  const row = await deploymentStatus('gpt4o-primary');
  assert.equal(row.state, 'cooling', `/status of the primary: ${JSON.stringify(row)}`);

  // The region recovers; spillway must still respect the cooldown it was told, then come back.
  await stack.setFault('primary', { mode: 'none' });
  const { hit, before } = await pollUntilRegion(openai, 'primary', { deadline: t0 + COOLDOWN_MS + 2500 });
  assertAllOk(before, 'polls during the cooldown');
  assert.ok(
    hit,
    `the primary did not answer within cooldown + 2.5 s; /status: ${JSON.stringify(await deploymentStatus('gpt4o-primary'))}`,
  );
  assert.ok(
    hit.doneAt >= t0 + COOLDOWN_MS,
    `the primary was used ${Math.round(t0 + COOLDOWN_MS - hit.doneAt)} ms before its 3000 ms cooldown ended`,
  );
  assert.ok(hit.sentAt <= t0 + COOLDOWN_MS + 2000, `traffic came back ${Math.round(hit.sentAt - t0)} ms after the throttle`);
  assert.equal(hit.attempts, 1);
  t.diagnostic(`${load.length} requests under throttle, primary 429s: ${throttled}; primary back ${Math.round(hit.sentAt - t0)} ms after the throttle began`);
  // Nothing probed the primary during its cooldown: its requests are the 429s plus the one hit.
  assert.equal((await stack.stats('primary')).requests, throttled + 1);

  const after = await fixedCount(openai, { total: 20, clients: 5 });
  assertAllOk(after, 'after recovery');
  assert.ok(after.every((r) => r.region === 'primary' && r.attempts === 1), 'all traffic is back on the primary');
});

// The circuit breaker: 3 consecutive failures open it for 1000 ms, then one trial decides.
const BREAKER = { health: { failure_threshold: 3, open_ms: 1000 } };

async function breakerScenario(t, openai, { countPrimaryRequests }) {
  // Sequential requests while the primary fails: the first `failure_threshold` try it (2 attempts
  // each), the rest go straight to the secondary while the circuit is open.
  const failing = await sequential(openai, 10);
  assertAllOk(failing, 'while the primary fails');
  assert.ok(failing.every((r) => r.region === 'secondary'));
  const elapsed = failing.at(-1).doneAt - failing[0].sentAt;
  assert.ok(elapsed < 900, `precondition: the 10 requests took ${Math.round(elapsed)} ms, which is close to open_ms`);
  assert.deepEqual(
    failing.map((r) => r.attempts),
    [2, 2, 2, 1, 1, 1, 1, 1, 1, 1],
    'x-spillway-attempts: the primary is tried until failure_threshold (3) failures, then skipped',
  );
  if (countPrimaryRequests) assert.equal(await countPrimaryRequests(), 3, 'the primary got exactly failure_threshold requests');
  const row = await deploymentStatus('gpt4o-primary');
  assert.equal(row.state, 'open', `/status of the primary after 3 failures: ${JSON.stringify(row)}`);

  // The circuit opened while the third request was in flight.
  const openedAfter = failing[2].sentAt;
  const openedBefore = failing[2].doneAt;

  await stack.setFault('primary', { mode: 'none' });
  const { hit, before } = await pollUntilRegion(openai, 'primary', { deadline: openedBefore + 1000 + 2500 });
  assertAllOk(before, 'polls while the circuit is open');
  assert.ok(before.every((r) => r.attempts === 1), 'while open, the primary is not tried');
  assert.ok(hit, `the primary did not answer within open_ms + 2.5 s; /status: ${JSON.stringify(await deploymentStatus('gpt4o-primary'))}`);
  assert.ok(
    hit.doneAt >= openedAfter + 1000,
    `the primary was tried ${Math.round(openedAfter + 1000 - hit.doneAt)} ms before open_ms (1000) had passed`,
  );
  assert.ok(hit.sentAt <= openedBefore + 1000 + 2000, `traffic came back ${Math.round(hit.sentAt - openedBefore)} ms after the circuit opened`);
  assert.equal(hit.attempts, 1);
  t.diagnostic(`primary back ${Math.round(hit.sentAt - openedBefore)}..${Math.round(hit.doneAt - openedAfter)} ms after the circuit opened`);
  if (countPrimaryRequests) assert.equal(await countPrimaryRequests(), 4, 'one half-open trial, no extra probes');

  const after = await sequential(openai, 10);
  assertAllOk(after, 'after recovery');
  assert.ok(after.every((r) => r.region === 'primary' && r.attempts === 1), 'all traffic is back on the primary');
  const closed = await deploymentStatus('gpt4o-primary');
  assert.equal(closed.state, 'available', `/status of the primary after recovery: ${JSON.stringify(closed)}`);
}

test('1c active-passive: primary refuses connections → circuit opens after 3 failures, primary back after open_ms', async (t) => {
  const openai = await freshStack({ proxy: BREAKER });
  await stack.setFault('primary', { mode: 'down' });
  await breakerScenario(t, openai, {});
  // Refused connections never reach the mock: its only requests are the trial and the 10 after it.
  const primary = await stack.stats('primary');
  assert.equal(primary.requests, 11);
  assert.equal(statusOf(primary, 200), 11);
});

test('1d active-passive: primary answers 503 → circuit opens after 3 failures, primary back after open_ms', async (t) => {
  const openai = await freshStack({ proxy: BREAKER });
  await stack.setFault('primary', { mode: 'error', status: 503 });
  await breakerScenario(t, openai, {
    countPrimaryRequests: async () => (await stack.stats('primary')).requests,
  });
  const primary = await stack.stats('primary');
  assert.equal(statusOf(primary, 503), 3);
  assert.equal(statusOf(primary, 200), 11);
});

// ---------------------------------------------------------------------------------------------
// 2. Active-active: weights 3:1 in one tier.
// ---------------------------------------------------------------------------------------------

test('2 active-active: weights 3:1 split the traffic 75% / 25% (± 5%)', async (t) => {
  // 800 rather than 400 requests: with 400 the binomial standard deviation of the share is 2.2%,
  // so ±5% would fail about 2% of healthy runs; with 800 it is 1.5% (±5% ≈ 3.3 σ).
  const TOTAL = 800;
  const openai = await freshStack({
    regions: [
      { name: 'heavy', priority: 0, weight: 3 },
      { name: 'light', priority: 0, weight: 1 },
    ],
  });
  const results = await fixedCount(openai, { total: TOTAL, clients: 8 });
  assertAllOk(results, 'weighted');
  assert.ok(results.every((r) => r.attempts === 1));

  const heavy = await stack.stats('heavy');
  const light = await stack.stats('light');
  assert.equal(heavy.requests + light.requests, TOTAL);
  assert.equal(heavy.requests, results.filter((r) => r.region === 'heavy').length);
  const share = heavy.requests / TOTAL;
  t.diagnostic(`weight-3 share ${(share * 100).toFixed(1)}% (heavy ${heavy.requests}, light ${light.requests})`);
  assert.ok(
    Math.abs(share - 0.75) <= 0.05,
    `weight-3 share ${(share * 100).toFixed(1)}% (heavy ${heavy.requests}, light ${light.requests}), expected 75% ± 5%`,
  );
});

// ---------------------------------------------------------------------------------------------
// 4. Everything throttled: the client's 429 says when the first deployment frees up.
// ---------------------------------------------------------------------------------------------

const TOL_MS = 150;

async function allThrottledStack() {
  const openai = await freshStack();
  await stack.setFault('primary', { mode: 'throttle', retry_after_ms: 5000 });
  await stack.setFault('secondary', { mode: 'throttle', retry_after_ms: 8000 });
  return openai;
}

/** A chat call that must end in the SDK's RateLimitError with consistent retry-after headers. */
async function rejected(openai) {
  const r = await chat(openai);
  assert.equal(r.ok, false, `expected a 429, got an answer from ${r.region}`);
  assert.ok(r.error instanceof RateLimitError, `got ${r.error?.constructor?.name}: ${r.error}`);
  assert.equal(r.error.status, 429);
  const ms = Number(r.error.headers.get('retry-after-ms'));
  const s = Number(r.error.headers.get('retry-after'));
  assert.ok(Number.isInteger(ms) && ms > 0 && ms <= 60_000, `retry-after-ms ${r.error.headers.get('retry-after-ms')}`);
  assert.equal(s, Math.ceil(ms / 1000), `retry-after ${s} must be retry-after-ms ${ms} in seconds, rounded up`);
  return { ...r, retryAfterMs: ms };
}

test('4a everything throttled (5000 / 8000 ms): the 429 of the request that meets the throttles says 5000 ms', async () => {
  const openai = await allThrottledStack();
  // Both regions answer 429 while this request is in flight; the soonest recovery is the
  // primary's, 5000 ms after its 429, which came between `sentAt` and `doneAt`.
  const first = await rejected(openai);
  assert.equal(statusOf(await stack.stats('primary'), 429), 1);
  assert.equal(statusOf(await stack.stats('secondary'), 429), 1);
  assert.ok(
    first.retryAfterMs >= 5000 - (first.doneAt - first.sentAt) - TOL_MS && first.retryAfterMs <= 5000 + TOL_MS,
    `retry-after-ms ${first.retryAfterMs} (retry-after ${first.error.headers.get('retry-after')}, ` +
      `answered by region ${first.error.headers.get('x-spillway-region')}), expected ≈ 5000, the sooner of 5000 and 8000`,
  );
});

test('4b everything throttled: later 429s count down to the soonest recovery, and waiting that long works', async () => {
  const openai = await allThrottledStack();
  const first = await rejected(openai);
  assert.equal(statusOf(await stack.stats('primary'), 429), 1);
  assert.equal(statusOf(await stack.stats('secondary'), 429), 1);

  // 1.5 s later nothing is tried upstream, and the wait is 5000 ms minus the time since the 429.
  await sleep(1500);
  const second = await rejected(openai);
  // The primary's 429 arrived in [first.sentAt, first.doneAt]; spillway decided in [second.sentAt, second.doneAt].
  const lo = 5000 - (second.doneAt - first.sentAt);
  const hi = 5000 - (second.sentAt - first.doneAt);
  assert.ok(
    second.retryAfterMs >= lo - TOL_MS && second.retryAfterMs <= hi + TOL_MS,
    `retry-after-ms ${second.retryAfterMs} ${Math.round(second.doneAt - first.sentAt)} ms after the first 429, ` +
      `expected ${Math.round(lo)}..${Math.round(hi)}`,
  );
  assert.equal((await stack.stats('primary')).requests, 1, 'the primary was tried during its cooldown');
  assert.equal((await stack.stats('secondary')).requests, 1, 'the secondary was tried during its cooldown');
  const rows = (await stack.status()).deployments.filter((d) => d.model === CHAT_MODEL);
  assert.deepEqual(rows.map((d) => d.state), ['cooling', 'cooling'], `/status: ${JSON.stringify(rows)}`);

  // The promise holds: the primary recovers, and a client that waits retry-after-ms gets through.
  await stack.setFault('primary', { mode: 'none' });
  await sleep(second.retryAfterMs + 20);
  const third = await chat(openai);
  assert.ok(third.ok, `after waiting retry-after-ms: ${third.error}`);
  assert.equal(third.region, 'primary');
  assert.equal(third.attempts, 1);
});

// ---------------------------------------------------------------------------------------------
// 5. Data zones: x-spillway-data-zone restricts routing to regions of that zone.
// ---------------------------------------------------------------------------------------------

test('5 x-spillway-data-zone routes only to regions of that zone, never across zones', async () => {
  const openai = await freshStack({
    regions: [
      { name: 'primary', priority: 0, data_zone: 'us' },
      { name: 'secondary', priority: 1, data_zone: 'eu' },
    ],
  });
  const counts = async () => [(await stack.stats('primary')).requests, (await stack.stats('secondary')).requests];

  // Without the header the priority-0 region (us) serves.
  const plain = await sequential(openai, 5);
  assertAllOk(plain, 'no zone header');
  assert.ok(plain.every((r) => r.region === 'primary'));

  // With `eu` every request goes to the priority-1 eu region, and nothing to the us one.
  const eu = await Promise.all(Array.from({ length: 20 }, () => chat(openai, { headers: { [ZONE_HEADER]: 'eu' } })));
  assertAllOk(eu, 'zone eu');
  assert.ok(eu.every((r) => r.region === 'secondary' && r.attempts === 1), `regions: ${eu.map((r) => r.region)}`);
  assert.deepEqual(await counts(), [5, 20]);

  // An unknown zone is an error, and no region is asked.
  const unknown = await chat(openai, { headers: { [ZONE_HEADER]: 'apac' } });
  assert.equal(unknown.ok, false, `zone apac was answered by ${unknown.region}`);
  assert.ok(unknown.error instanceof APIError, `got ${unknown.error?.constructor?.name}: ${unknown.error}`);
  assert.ok(unknown.status >= 400 && unknown.status < 600, `status ${unknown.status}`);
  assert.equal(typeof unknown.error.error?.message, 'string', 'OpenAI error envelope');
  assert.deepEqual(await counts(), [5, 20], 'a request for an unknown zone reached a region');

  // Failover stays inside the zone: the eu region throttled → 429 to the client, not the us region.
  await stack.setFault('secondary', { mode: 'throttle', retry_after_ms: 5000 });
  const euThrottled = await chat(openai, { headers: { [ZONE_HEADER]: 'eu' } });
  assert.equal(euThrottled.ok, false, `the eu request was answered by ${euThrottled.region}`);
  assert.ok(euThrottled.error instanceof RateLimitError, `got ${euThrottled.error?.constructor?.name}: ${euThrottled.error}`);
  assert.deepEqual(await counts(), [5, 21], 'an eu request failed over to the us region');

  // Meanwhile requests without the header are unaffected, and us-zone ones too.
  const us = await chat(openai, { headers: { [ZONE_HEADER]: 'us' } });
  assert.ok(us.ok && us.region === 'primary', `zone us: ${us.region ?? us.error}`);
});
