// Operations under traffic: (a) a config reload (SIGHUP, then POST /reload) while ~200 requests/s
// flow through two active-active deployments drops nothing, changes the weights for new requests,
// keeps health state and counters, and lets a stream that started before it finish; (b) SIGTERM
// with streams in flight: no new connections, every stream completes, exit 0.
//
// Both scenarios are about time: the mock paces answers (100 ms to the first token, 100 ms per
// token), so a 20-token stream lasts ~2.1 s and a 1-token answer ~0.2 s.

import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';

import { CHAT_MODEL, CLIENT_KEY, startStack } from './harness.mjs';
import { scrape } from './prometheus.mjs';

const messages = [{ role: 'user', content: 'Keep going.' }];
const TTFT_MS = 100;
const TOKEN_MS = 100;
const STREAM_TOKENS = 20;

let stack;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

async function slowRegions(names) {
  for (const name of names) await stack.setLatency(name, { ttft_ms: TTFT_MS, token_ms: TOKEN_MS });
}

function sdk() {
  return new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
}

// Reads a chat stream to its end, noting when each content chunk arrived.
async function readStream(stream, onChunk = () => {}) {
  const chunks = [];
  const contentAt = [];
  let text = '';
  for await (const chunk of stream) {
    chunks.push(chunk);
    const delta = chunk.choices?.[0]?.delta?.content;
    if (typeof delta === 'string' && delta !== '') {
      text += delta;
      contentAt.push(Date.now());
      onChunk(contentAt.length);
    }
  }
  return { chunks, text, contentAt, endedAt: Date.now() };
}

function assertCompleteStream(result, region, where) {
  const { chunks, text, contentAt } = result;
  assert.equal(contentAt.length, STREAM_TOKENS, `${where}: ${contentAt.length} content chunks`);
  assert.ok(text.startsWith(`Hello from ${region}/gpt4o-${region}`), `${where}: ${text}`);
  assert.ok(
    chunks.some((c) => c.choices?.[0]?.finish_reason === 'stop'),
    `${where}: no finish chunk`,
  );
  // The usage chunk comes last, right before `data: [DONE]` (which ended the SDK's iteration).
  assert.equal(chunks.at(-1).usage?.completion_tokens, STREAM_TOKENS, `${where}: no final usage chunk`);
}

async function reloadsSucceeded() {
  return (await scrape(stack.adminOrigin)).get('spillway_config_reloads_total', { result: 'success' });
}

async function waitFor(what, predicate, timeoutMs = 3000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('reload under ~200 req/s: zero failures, weights 1:1 -> 3:1, a stream across the reload completes', async (t) => {
  stack = await startStack({
    regions: [
      { name: 'primary', priority: 0, weight: 1 },
      { name: 'secondary', priority: 0, weight: 1 },
    ],
  });
  await slowRegions(['primary', 'secondary']);

  const LOAD_MS = 4000;
  const WORKERS = 45; // each answer takes ~220 ms: 45 in flight ~ 200 requests/s
  const SIGHUP_AT = 1500;
  const POST_RELOAD_AT = 2200;
  const clients = Array.from({ length: 4 }, sdk);
  const t0 = Date.now();
  const done = []; // { start, end, region }
  const failures = [];

  async function worker(i) {
    const client = clients[i % clients.length];
    while (Date.now() - t0 < LOAD_MS) {
      const start = Date.now();
      try {
        const { data, response } = await client.chat.completions
          .create({ model: CHAT_MODEL, messages, max_tokens: 1 })
          .withResponse();
        assert.equal(data.choices[0].finish_reason, 'length');
        done.push({ start, end: Date.now(), region: response.headers.get('x-spillway-region') });
      } catch (err) {
        failures.push(`${Date.now() - t0} ms: ${err?.status ?? ''} ${err?.message ?? err}`);
      }
    }
  }
  const load = Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)));

  // A 20-token stream (~2.1 s), started before the reload and still running when it happens.
  await sleep(300);
  const streamClient = sdk();
  const { data: stream, response: streamResponse } = await streamClient.chat.completions
    .create({ model: CHAT_MODEL, messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  const streamRegion = streamResponse.headers.get('x-spillway-region');
  const streamDone = readStream(stream);

  // Midway: 3:1 for the primary, by SIGHUP.
  await sleep(Math.max(0, SIGHUP_AT - (Date.now() - t0)));
  const config = stack.proxyConfig();
  config.regions[0].weight = 3;
  await stack.writeConfig(config);
  const sighupAt = Date.now();
  stack.sighup();
  await waitFor('the SIGHUP reload', async () => (await reloadsSucceeded()) === 1);

  // And once more through the admin API (same file: a no-op change, also without a hiccup).
  await sleep(Math.max(0, POST_RELOAD_AT - (Date.now() - t0)));
  const reload = await stack.admin('POST', '/reload');
  assert.equal(reload.status, 200, reload.text);
  assert.deepEqual(reload.json, { reloaded: true, errors: [] });
  assert.equal(await reloadsSucceeded(), 2);

  await load;
  const streamed = await streamDone;
  const elapsed = Date.now() - t0;

  assert.deepEqual(failures, [], `${failures.length} failed requests`);
  const rate = done.length / (LOAD_MS / 1000);
  assert.ok(rate >= 120, `only ${rate.toFixed(0)} requests/s`);

  // The stream was running before the SIGHUP and finished after it, completely.
  assert.ok(streamed.contentAt[0] < sighupAt, 'the stream started after the reload');
  assert.ok(streamed.endedAt > sighupAt, 'the stream ended before the reload');
  assertCompleteStream(streamed, streamRegion, 'stream across the reload');

  const share = (list) => list.filter((r) => r.region === 'primary').length / list.length;
  const beforeReload = done.filter((r) => r.end < sighupAt);
  const lastSecond = done.filter((r) => r.start - t0 >= LOAD_MS - 1000);
  const shares = `before ${(share(beforeReload) * 100).toFixed(1)}% of ${beforeReload.length}, ` +
    `last second ${(share(lastSecond) * 100).toFixed(1)}% of ${lastSecond.length}`;
  t.diagnostic(`${done.length} requests in ${LOAD_MS} ms (${rate.toFixed(0)}/s); primary share ${shares}`);
  assert.ok(beforeReload.length >= 100 && lastSecond.length >= 100, shares);
  assert.ok(share(beforeReload) > 0.35 && share(beforeReload) < 0.65, `1:1 before the reload: ${shares}`);
  assert.ok(share(lastSecond) > 0.6, `3:1 after the reload: ${shares}`);

  // Health state and counters survived both reloads: every attempt is still counted.
  const total = done.length + 1;
  await waitFor('every access-log line', () => stack.accessLog().length >= total);
  assert.equal(stack.accessLog().length, total);
  const status = await stack.status();
  const chat = status.deployments.filter((d) => d.model === CHAT_MODEL);
  assert.deepEqual(
    chat.map((d) => [d.name, d.weight]),
    [
      ['gpt4o-primary', 3],
      ['gpt4o-secondary', 1],
    ],
  );
  assert.equal(chat.reduce((n, d) => n + d.requests, 0), total, 'per-deployment request counts were reset by a reload');
  assert.equal(chat.reduce((n, d) => n + d.errors, 0), 0);
  const metrics = await scrape(stack.adminOrigin);
  assert.equal(metrics.get('spillway_requests_total', { model: CHAT_MODEL, code: '200' }), total);
  assert.equal(metrics.sum('spillway_upstream_requests_total'), total, 'an attempt was retried or failed');
  assert.equal(metrics.get('spillway_config_reloads_total', { result: 'error' }), 0);
  assert.ok(elapsed < 8000, `took ${elapsed} ms`);
});

// Resolves with the error code of one TCP connection attempt (undefined if it connected).
function tryConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (err) => resolve(err.code));
  });
}

test('SIGTERM with 3 streams in flight: no new connections, every stream completes, exit 0', async (t) => {
  stack = await startStack();
  await slowRegions(['primary']);

  const started = [];
  const streams = [];
  let firstChunks = 0;
  let allStarted;
  const allStartedPromise = new Promise((resolve) => (allStarted = resolve));
  for (let i = 0; i < 3; i++) {
    // One client per stream: three connections.
    const stream = await sdk().chat.completions.create({
      model: CHAT_MODEL,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    started.push(Date.now());
    streams.push(
      readStream(stream, (n) => {
        if (n === 1 && ++firstChunks === 3) allStarted();
      }),
    );
  }
  await allStartedPromise;

  const exited = stack.proxy.exited.then((exit) => ({ ...exit, at: Date.now() }));
  const sigtermAt = Date.now();
  stack.proxy.kill('SIGTERM');

  // New connections are refused once the listener is closed — while the streams still run.
  let refused;
  const until = Date.now() + 1000;
  let attempts = 0;
  while (Date.now() < until) {
    attempts++;
    refused = await tryConnect(stack.port);
    if (refused === 'ECONNREFUSED') break;
    await sleep(20);
  }
  const refusedAt = Date.now();
  assert.equal(refused, 'ECONNREFUSED', `data port still accepting ${refusedAt - sigtermAt} ms after SIGTERM (${attempts} attempts)`);

  t.diagnostic(`ECONNREFUSED ${refusedAt - sigtermAt} ms after SIGTERM (attempt ${attempts})`);
  const results = await Promise.all(streams);
  for (const [i, r] of results.entries()) {
    assert.ok(r.endedAt > refusedAt, `stream ${i} had already ended when the refusal was observed`);
    assertCompleteStream(r, 'primary', `stream ${i}`);
    // Its tokens kept arriving after the SIGTERM.
    assert.ok(r.contentAt.filter((t) => t > sigtermAt).length >= 10, `stream ${i}: tokens stopped at SIGTERM`);
  }
  const lastEnd = Math.max(...results.map((r) => r.endedAt));

  const exit = await exited;
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, stack.proxyLog());
  assert.ok(exit.at >= lastEnd - 50, 'spillway exited before its streams were done');
  assert.ok(exit.at - lastEnd < 2000, `spillway took ${exit.at - lastEnd} ms to exit after the last stream`);
  assert.doesNotMatch(stack.proxyLog(), /cut off/);
  // Three streams, three access-log lines, all 200.
  assert.deepEqual(stack.accessLog().map((l) => [l.status, l.stream]), [[200, true], [200, true], [200, true]]);
});

test('while draining, /readyz says not ready (so load balancers stop routing here); /healthz stays 200', async () => {
  stack = await startStack();
  await slowRegions(['primary']);
  const ready = await stack.admin('GET', '/readyz');
  assert.equal(ready.status, 200, ready.text);

  // One stream keeps the drain going for ~2 s; the admin port still answers meanwhile.
  const stream = await sdk().chat.completions.create({
    model: CHAT_MODEL,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  let signalled;
  const firstChunk = new Promise((resolve) => (signalled = resolve));
  const done = readStream(stream, (n) => n === 1 && signalled());
  await firstChunk;
  stack.proxy.kill('SIGTERM');
  await waitFor('the drain to start', () => /draining/.test(stack.proxyLog()));

  const healthz = await stack.admin('GET', '/healthz');
  const readyz = await stack.admin('GET', '/readyz');
  const readyzAt = Date.now();
  const streamed = await done;
  assertCompleteStream(streamed, 'primary', 'the stream in flight');
  assert.ok(streamed.contentAt.some((t) => t > readyzAt), 'the stream had ended before /readyz was asked');
  assert.deepEqual(await stack.proxy.exited, { code: 0, signal: null });

  assert.equal(healthz.status, 200, 'the process runs: healthz 200');
  assert.equal(readyz.status, 503, `GET /readyz while draining -> ${readyz.status} ${readyz.text}`);
  assert.equal(readyz.json.ready, false, readyz.text);
});
