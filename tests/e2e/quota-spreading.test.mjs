// Acceptance scenario 3 of the router (SPEC §4, quota headroom): three regions in one tier with
// TPM quotas 12000 / 6000 / 3000 (RPM derived: 72 / 36 / 18, i.e. 12 / 6 / 3 per 10 s), the same
// numbers in the mock and in spillway's config. Requests of exactly 200 estimated tokens
// (400 prompt characters / 4 + max_tokens 100) are offered at 90 per minute for 40 s: 18000 TPM and
// 15 per 10 s, within the 21000 TPM / 21 per 10 s the three have together but far more than the
// small region alone could take at an even split. spillway must spread the load by its own
// accounting of the quotas, so that the SDK (maxRetries: 0) sees no failure and the regions
// almost never have to refuse anything.
//
// It takes ~40 s by design (rates are the point), so it lives alone in this file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';

import { CHAT_MODEL, CLIENT_KEY, startStack } from './harness.mjs';

const REGIONS = [
  { name: 'large', priority: 0, chatTpm: 12_000 },
  { name: 'medium', priority: 0, chatTpm: 6_000 },
  { name: 'small', priority: 0, chatTpm: 3_000 },
];
const PER_MINUTE = 90;
const DURATION_MS = 40_000;
const MAX_TOKENS = 100;
// Exactly 400 characters (ASCII, so code points = bytes): 400 / 4 + 100 = 200 estimated tokens.
const CONTENT = 'Summarise the weather report for the harbour district in one line. '.repeat(7).slice(0, 400);
const MAX_UPSTREAM_429 = 3;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

test('3 quota spreading: 90 requests/min of 200 tokens over 12000/6000/3000 TPM → no client failure, ≤ 3 upstream 429s', { timeout: 120_000 }, async (t) => {
  assert.equal(CONTENT.length, 400);
  const stack = await startStack({ regions: REGIONS });
  try {
    const openai = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
    const messages = [{ role: 'user', content: CONTENT }];

    // Open loop: request i is sent at start + i × 666.7 ms whatever happened to earlier ones.
    const interval = 60_000 / PER_MINUTE;
    const count = Math.floor(DURATION_MS / interval);
    const start = performance.now();
    const pending = [];
    for (let i = 0; i < count; i += 1) {
      await sleep(start + i * interval - performance.now());
      pending.push(
        openai.chat.completions
          .create({ model: CHAT_MODEL, messages, max_tokens: MAX_TOKENS })
          .withResponse()
          .then(
            ({ response }) => ({ ok: true, i, region: response.headers.get('x-spillway-region') }),
            (error) => ({ ok: false, i, error }),
          ),
      );
    }
    const results = await Promise.all(pending);

    const stats = Object.fromEntries(await Promise.all(REGIONS.map(async (r) => [r.name, await stack.stats(r.name)])));
    const summary = REGIONS.map((r) => `${r.name} (${r.chatTpm} TPM): ${JSON.stringify(stats[r.name].by_status)}`).join('; ');
    t.diagnostic(`upstream: ${summary}`);
    const status = await stack.status();
    t.diagnostic(
      `/status: ${JSON.stringify(status.deployments.filter((d) => d.model === CHAT_MODEL).map((d) => ({ region: d.region, state: d.state, remaining_tokens: d.remaining_tokens, remaining_requests: d.remaining_requests, requests: d.requests, errors: d.errors })))}`,
    );

    const failed = results.filter((r) => !r.ok);
    assert.equal(
      failed.length,
      0,
      `${failed.length} of ${count} client calls failed: ` +
        failed.slice(0, 5).map((r) => `#${r.i} ${r.error?.constructor?.name} ${r.error?.status}: ${r.error?.message}`).join(' | ') +
        `\nupstream: ${summary}`,
    );

    const total = (code) => REGIONS.reduce((n, r) => n + (stats[r.name].by_status[String(code)] ?? 0), 0);
    assert.equal(total(200), count, `upstream 200s: ${summary}`);
    assert.ok(total(429) <= MAX_UPSTREAM_429, `${total(429)} upstream 429s (at most ${MAX_UPSTREAM_429} allowed): ${summary}`);
    // Every answer came from the region spillway said it came from.
    for (const r of REGIONS) {
      assert.equal(
        results.filter((x) => x.region === r.name).length,
        stats[r.name].by_status['200'] ?? 0,
        `x-spillway-region vs. the mock's count for ${r.name}`,
      );
    }
  } finally {
    await stack.stop();
  }
});
