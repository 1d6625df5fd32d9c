// Observability under scripted traffic: after a known sequence of SDK calls (normal answers, a
// 503 failover, a 429 throttle and its cooldown, a 401, a 404, every deployment cooling) the
// admin port's /metrics counters, /status states, /readyz and the JSON access log must show
// exactly what happened. Then POST /reload with a broken and a fixed config file.
//
// The tests in this file are phases of ONE scenario on ONE stack and run in order: counters are
// cumulative, and each phase records what it expects the counters to show.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AuthenticationError, NotFoundError, RateLimitError } from 'openai';

import {
  CHAT_MODEL,
  CLIENT_KEY,
  EMBEDDING_MODEL,
  collectChatStream,
  startStack,
  upstreamKey,
} from './harness.mjs';
import { scrape } from './prometheus.mjs';

const messages = [{ role: 'user', content: 'Say hello to the metrics.' }];
const COOLDOWN_MS = 5000;
const BAD_KEY = 'sk-e2e-wrong-key';

let stack;
let client;

// What the scenario did, as the counters should report it.
const expected = {
  // spillway_requests_total: `${model}|${code}` -> n
  requests: {},
  // spillway_upstream_requests_total: `${region}|${deployment}|${code}` -> n
  upstream: {},
  // spillway_tokens_total from the usage the SDK saw: `${region}|${deployment}|${type}` -> n
  tokens: {},
  // spillway_retries_total: `${region}|${deployment}|${reason}` -> n
  retries: {},
  // one entry per client request, in order: what its access-log line must say
  log: [],
};

function bump(map, key, n = 1) {
  map[key] = (map[key] ?? 0) + n;
}

function sawUsage(region, deployment, usage) {
  assert.ok(usage, `no usage from ${region}/${deployment}`);
  bump(expected.tokens, `${region}|${deployment}|prompt`, usage.prompt_tokens);
  bump(expected.tokens, `${region}|${deployment}|completion`, usage.completion_tokens ?? 0);
}

// `attempts`: [[region, status], ...] in order; the last one answered the client (when < 400).
function sawRequest({ model, code, client: who = 'e2e', attempts = [], stream = false }) {
  bump(expected.requests, `${model}|${code}`);
  for (const [region, status, deployment] of attempts) {
    bump(expected.upstream, `${region}|${deployment}|${status}`);
  }
  expected.log.push({ model, code, client: who, attempts, stream });
}

function retried(region, deployment, reason) {
  bump(expected.retries, `${region}|${deployment}|${reason}`);
}

// Series of a counter as `a|b|c` -> value, zero series left out (spillway pre-creates many).
function counterMap(metrics, name, keys) {
  const out = {};
  for (const s of metrics.all(name)) {
    if (s.value !== 0) out[keys.map((k) => s.labels[k]).join('|')] = s.value;
  }
  return out;
}

function sorted(obj) {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => a.localeCompare(b)));
}

function deploymentStatus(status, name) {
  const d = status.deployments.find((x) => x.name === name);
  assert.ok(d, `no deployment ${name} in /status`);
  return d;
}

before(async () => {
  // The secondary's gpt-4o has a quota (tpm 60000, so rpm 360: 60 per 10 s window); the rest is unlimited.
  stack = await startStack({
    regions: [
      { name: 'primary', priority: 0 },
      { name: 'secondary', priority: 1, chatTpm: 60_000 },
    ],
  });
  client = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
});

after(async () => {
  const exit = await stack?.stop();
  if (exit) assert.deepEqual(exit, { code: 0, signal: null });
});

test('healthy traffic is answered by the primary', async () => {
  for (let i = 0; i < 3; i++) {
    const { data, response } = await client.chat.completions
      .create({ model: CHAT_MODEL, messages: [{ role: 'user', content: `request number ${i} `.repeat(i + 1) }] })
      .withResponse();
    assert.equal(response.headers.get('x-spillway-region'), 'primary');
    assert.equal(response.headers.get('x-spillway-attempts'), '1');
    sawUsage('primary', 'gpt4o-primary', data.usage);
    sawRequest({ model: CHAT_MODEL, code: 200, attempts: [['primary', 200, 'gpt4o-primary']] });
  }

  const stream = await client.chat.completions
    .create({ model: CHAT_MODEL, messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  assert.equal(stream.response.headers.get('x-spillway-region'), 'primary');
  const { chunks } = await collectChatStream(stream.data);
  sawUsage('primary', 'gpt4o-primary', chunks.at(-1).usage);
  sawRequest({ model: CHAT_MODEL, code: 200, attempts: [['primary', 200, 'gpt4o-primary']], stream: true });

  const emb = await client.embeddings.create({ model: EMBEDDING_MODEL, input: 'count my tokens please' }).withResponse();
  assert.equal(emb.response.headers.get('x-spillway-deployment'), 'emb-primary');
  assert.ok(emb.data.usage.prompt_tokens > 0);
  sawUsage('primary', 'emb-primary', emb.data.usage);
  sawRequest({ model: EMBEDDING_MODEL, code: 200, attempts: [['primary', 200, 'emb-primary']] });
});

test('quota gauges: a deployment\'s headroom when it has a quota, and no made-up 0 when it has none', async () => {
  const metrics = await scrape(stack.adminOrigin);
  const status = await stack.status();
  const gauge = (name, region, deployment) => metrics.get(name, { region, deployment });
  // Untouched so far: the whole quota is left.
  const secondary = deploymentStatus(status, 'gpt4o-secondary');
  assert.equal(secondary.tpm, 60_000);
  assert.equal(secondary.remaining_tokens, 60_000);
  assert.equal(secondary.remaining_requests, 60);
  assert.equal(gauge('spillway_deployment_remaining_tokens', 'secondary', 'gpt4o-secondary'), 60_000);
  assert.equal(gauge('spillway_deployment_remaining_requests', 'secondary', 'gpt4o-secondary'), 60);
  // Without a quota /status says null (unknown / unlimited). The gauge must not say 0: that reads
  // as "exhausted" to every dashboard and alert (`min(...) < 1000`). Absent or +Inf is honest.
  for (const [region, deployment] of [['primary', 'gpt4o-primary'], ['primary', 'emb-primary'], ['secondary', 'emb-secondary']]) {
    const d = deploymentStatus(status, deployment);
    assert.equal(d.remaining_tokens, null);
    assert.equal(d.remaining_requests, null);
    for (const name of ['spillway_deployment_remaining_tokens', 'spillway_deployment_remaining_requests']) {
      const v = gauge(name, region, deployment);
      assert.ok(
        v === undefined || v === Infinity,
        `${name}{region="${region}",deployment="${deployment}"} is ${v} for a deployment without a quota (/status: null)`,
      );
    }
  }
});

test('primary answers 503 once: the request is retried on the secondary', async () => {
  await stack.setFault('primary', { mode: 'error', status: 503 });
  const { data, response } = await client.chat.completions.create({ model: CHAT_MODEL, messages }).withResponse();
  await stack.setFault('primary', { mode: 'none' });
  assert.equal(response.headers.get('x-spillway-region'), 'secondary');
  assert.equal(response.headers.get('x-spillway-attempts'), '2');
  sawUsage('secondary', 'gpt4o-secondary', data.usage);
  retried('primary', 'gpt4o-primary', 'server_error');
  sawRequest({
    model: CHAT_MODEL,
    code: 200,
    attempts: [
      ['primary', 503, 'gpt4o-primary'],
      ['secondary', 200, 'gpt4o-secondary'],
    ],
  });

  // One 5xx is below failure_threshold (3): the primary stays available and takes the next one.
  const next = await client.chat.completions.create({ model: CHAT_MODEL, messages }).withResponse();
  assert.equal(next.response.headers.get('x-spillway-region'), 'primary');
  sawUsage('primary', 'gpt4o-primary', next.data.usage);
  sawRequest({ model: CHAT_MODEL, code: 200, attempts: [['primary', 200, 'gpt4o-primary']] });
});

test('primary throttles (429, retry-after 5 s): secondary answers, primary is cooling', async () => {
  await stack.setFault('primary', { mode: 'throttle', retry_after_ms: COOLDOWN_MS });
  const throttledAt = Date.now();
  const first = await client.chat.completions.create({ model: CHAT_MODEL, messages }).withResponse();
  assert.equal(first.response.headers.get('x-spillway-region'), 'secondary');
  assert.equal(first.response.headers.get('x-spillway-attempts'), '2');
  sawUsage('secondary', 'gpt4o-secondary', first.data.usage);
  retried('primary', 'gpt4o-primary', 'throttled');
  sawRequest({
    model: CHAT_MODEL,
    code: 200,
    attempts: [
      ['primary', 429, 'gpt4o-primary'],
      ['secondary', 200, 'gpt4o-secondary'],
    ],
  });

  // During the cooldown the primary is not even tried.
  const second = await client.chat.completions.create({ model: CHAT_MODEL, messages }).withResponse();
  assert.equal(second.response.headers.get('x-spillway-region'), 'secondary');
  assert.equal(second.response.headers.get('x-spillway-attempts'), '1');
  sawUsage('secondary', 'gpt4o-secondary', second.data.usage);
  sawRequest({ model: CHAT_MODEL, code: 200, attempts: [['secondary', 200, 'gpt4o-secondary']] });

  const status = await stack.status();
  const elapsed = Date.now() - throttledAt;
  const primary = deploymentStatus(status, 'gpt4o-primary');
  assert.equal(primary.state, 'cooling');
  assert.ok(
    primary.cooldown_remaining_ms > 0 && primary.cooldown_remaining_ms <= COOLDOWN_MS,
    `cooldown_remaining_ms ${primary.cooldown_remaining_ms}`,
  );
  assert.ok(
    primary.cooldown_remaining_ms >= COOLDOWN_MS - elapsed - 50,
    `cooldown_remaining_ms ${primary.cooldown_remaining_ms} after ${elapsed} ms: shorter than retry-after-ms`,
  );
  assert.equal(deploymentStatus(status, 'gpt4o-secondary').state, 'available');
  assert.equal(deploymentStatus(status, 'emb-primary').state, 'available', 'a chat 429 cooled the embeddings deployment');

  const metrics = await scrape(stack.adminOrigin);
  const gauge = (name, region, deployment) => metrics.get(name, { region, deployment });
  assert.equal(gauge('spillway_deployment_available', 'primary', 'gpt4o-primary'), 0);
  assert.equal(gauge('spillway_deployment_available', 'secondary', 'gpt4o-secondary'), 1);
  assert.equal(gauge('spillway_deployment_available', 'primary', 'emb-primary'), 1);
  assert.equal(gauge('spillway_deployment_available', 'secondary', 'emb-secondary'), 1);
  const cooldown = gauge('spillway_deployment_cooldown_seconds', 'primary', 'gpt4o-primary');
  assert.ok(cooldown > 0 && cooldown <= COOLDOWN_MS / 1000, `cooldown gauge ${cooldown}`);
  assert.equal(gauge('spillway_deployment_cooldown_seconds', 'secondary', 'gpt4o-secondary'), 0);
  for (const s of metrics.all('spillway_deployment_inflight')) {
    assert.equal(s.value, 0, `inflight ${JSON.stringify(s.labels)}`);
  }

  // The model still has an available deployment (the secondary): ready.
  const ready = await stack.admin('GET', '/readyz');
  assert.equal(ready.status, 200, ready.text);
  assert.deepEqual(ready.json, { ready: true });
  await stack.setFault('primary', { mode: 'none' });
});

test('401 (bad key), 404 (unknown model) and the data port\'s /metrics (404) are answered and counted', async () => {
  const bad = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: BAD_KEY, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: CHAT_MODEL, messages }), AuthenticationError);
  // Rejected before the body is read: not attributed to a model or a client.
  sawRequest({ model: '', code: 401, client: '' });

  await assert.rejects(client.chat.completions.create({ model: 'gpt-9-ultra', messages }), (err) => {
    assert.ok(err instanceof NotFoundError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.code, 'model_not_found');
    return true;
  });
  sawRequest({ model: '', code: 404 });

  // Metrics are on the admin port only.
  const res = await fetch(`${stack.origin}/metrics`);
  const body = await res.text();
  assert.equal(res.status, 404);
  assert.doesNotMatch(body, /spillway_requests_total/);
  sawRequest({ model: '', code: 404, client: '' });
});

test('every deployment of the model cooling: 429 to the client, /readyz 503 with the reason', async () => {
  await stack.setFault('secondary', { mode: 'throttle', retry_after_ms: COOLDOWN_MS });
  await assert.rejects(client.chat.completions.create({ model: CHAT_MODEL, messages }), (err) => {
    assert.ok(err instanceof RateLimitError, `got ${err?.constructor?.name}: ${err}`);
    return true;
  });
  await stack.setFault('secondary', { mode: 'none' });
  // The primary is cooling, so only the secondary was tried; its 429 is what the client got.
  sawRequest({ model: CHAT_MODEL, code: 429, attempts: [['secondary', 429, 'gpt4o-secondary']] });

  const ready = await stack.admin('GET', '/readyz');
  assert.equal(ready.status, 503, ready.text);
  assert.equal(ready.json.ready, false);
  assert.deepEqual(Object.keys(ready.json.models), [CHAT_MODEL], 'only gpt-4o is unready (embeddings are fine)');
  assert.match(ready.json.models[CHAT_MODEL], /2 cooling/);

  const status = await stack.status();
  assert.equal(deploymentStatus(status, 'gpt4o-primary').state, 'cooling');
  assert.equal(deploymentStatus(status, 'gpt4o-secondary').state, 'cooling');
  const healthz = await stack.admin('GET', '/healthz');
  assert.equal(healthz.status, 200, 'healthz must not depend on readiness');
});

test('/metrics counters equal what the scenario did', async () => {
  await stack.waitForAccessLog(expected.log.length);
  const metrics = await scrape(stack.adminOrigin);
  assert.equal(metrics.types.spillway_requests_total, 'counter');
  assert.equal(metrics.types.spillway_request_duration_seconds, 'histogram');
  assert.equal(metrics.types.spillway_deployment_available, 'gauge');

  assert.deepEqual(
    sorted(counterMap(metrics, 'spillway_requests_total', ['model', 'code'])),
    sorted(expected.requests),
    'spillway_requests_total',
  );
  // Spelled out once, so the bookkeeping above is itself checked.
  assert.equal(metrics.get('spillway_requests_total', { model: CHAT_MODEL, code: '200' }), 8);
  assert.equal(metrics.get('spillway_requests_total', { model: CHAT_MODEL, code: '429' }), 1);
  assert.equal(metrics.get('spillway_requests_total', { model: EMBEDDING_MODEL, code: '200' }), 1);
  assert.equal(metrics.get('spillway_requests_total', { model: '', code: '401' }), 1);
  assert.equal(metrics.get('spillway_requests_total', { model: '', code: '404' }), 2);

  assert.deepEqual(
    sorted(counterMap(metrics, 'spillway_upstream_requests_total', ['region', 'deployment', 'code'])),
    sorted(expected.upstream),
    'spillway_upstream_requests_total',
  );
  assert.equal(metrics.get('spillway_upstream_requests_total', { region: 'primary', deployment: 'gpt4o-primary', code: '503' }), 1);
  assert.equal(metrics.get('spillway_upstream_requests_total', { region: 'primary', deployment: 'gpt4o-primary', code: '429' }), 1);
  assert.equal(metrics.get('spillway_upstream_requests_total', { region: 'secondary', deployment: 'gpt4o-secondary', code: '429' }), 1);

  assert.deepEqual(
    sorted(counterMap(metrics, 'spillway_retries_total', ['region', 'deployment', 'reason'])),
    sorted(expected.retries),
    'spillway_retries_total',
  );
  assert.deepEqual(sorted(expected.retries), {
    'primary|gpt4o-primary|server_error': 1,
    'primary|gpt4o-primary|throttled': 1,
  });
  // Every reason of the contract exists as a series (pre-created at 0), for every deployment.
  for (const reason of ['throttled', 'server_error', 'connect_error', 'timeout', 'upstream_reset']) {
    for (const [region, deployment] of [['primary', 'gpt4o-primary'], ['secondary', 'emb-secondary']]) {
      assert.notEqual(metrics.get('spillway_retries_total', { region, deployment, reason }), undefined, `${deployment} ${reason}`);
    }
  }

  // 20 completion tokens per chat answer (the mock's completion_tokens): 5 from the primary, 3 from the secondary.
  assert.equal(expected.tokens['primary|gpt4o-primary|completion'], 5 * 20);
  assert.equal(expected.tokens['secondary|gpt4o-secondary|completion'], 3 * 20);
  assert.ok(expected.tokens['primary|emb-primary|prompt'] > 0);
  assert.deepEqual(
    sorted(counterMap(metrics, 'spillway_tokens_total', ['region', 'deployment', 'type'])),
    sorted(Object.fromEntries(Object.entries(expected.tokens).filter(([, v]) => v !== 0))),
    'spillway_tokens_total vs the usage the SDK saw',
  );

  // Histograms: one observation per client request of the model / per upstream answer.
  assert.equal(metrics.get('spillway_request_duration_seconds_count', { model: CHAT_MODEL }), 9);
  assert.equal(metrics.get('spillway_request_duration_seconds_count', { model: EMBEDDING_MODEL }), 1);
  assert.equal(metrics.get('spillway_request_duration_seconds_count', { model: '' }), 3);
  const inf = metrics.get('spillway_request_duration_seconds_bucket', { model: CHAT_MODEL, le: '+Inf' });
  assert.equal(inf, 9);
  // TTFB: every upstream attempt that got response headers (5 x 200, 1 x 503, 1 x 429 on the primary).
  assert.equal(metrics.get('spillway_upstream_ttfb_seconds_count', { region: 'primary', deployment: 'gpt4o-primary' }), 7);
  assert.equal(metrics.get('spillway_upstream_ttfb_seconds_count', { region: 'secondary', deployment: 'gpt4o-secondary' }), 4);
  // Latency: every upstream answer that was relayed complete (the 503 and 429 were retried).
  assert.equal(metrics.get('spillway_upstream_latency_seconds_count', { region: 'primary', deployment: 'gpt4o-primary' }), 5);

  assert.equal(metrics.get('spillway_config_reloads_total', { result: 'success' }), 0);
  assert.equal(metrics.get('spillway_config_reloads_total', { result: 'error' }), 0);
  const conns = metrics.get('spillway_active_connections');
  assert.ok(Number.isInteger(conns) && conns >= 0, `spillway_active_connections ${conns}`);

  // /status counts attempts per deployment the same way.
  const status = await stack.status();
  const primary = deploymentStatus(status, 'gpt4o-primary');
  assert.equal(primary.requests, 7);
  assert.equal(primary.errors, 2);
  const secondary = deploymentStatus(status, 'gpt4o-secondary');
  assert.equal(secondary.requests, 4);
  assert.equal(secondary.errors, 1);
  assert.equal(deploymentStatus(status, 'emb-primary').requests, 1);
  assert.equal(deploymentStatus(status, 'emb-secondary').requests, 0);
});

test('the access log has one JSON line per request, without any key', async () => {
  await stack.waitForAccessLog(expected.log.length);
  const stdout = stack.proxy.output.stdout;
  const lines = stack.accessLog();
  assert.equal(lines.length, expected.log.length, stdout);
  for (const [i, want] of expected.log.entries()) {
    const line = lines[i];
    const where = `access log line ${i + 1}: ${JSON.stringify(line)}`;
    assert.equal(line.status, want.code, where);
    assert.equal(line.client, want.client, where);
    assert.equal(line.model, want.model, where);
    assert.equal(line.stream, want.stream, where);
    assert.equal(typeof line.request_id, 'string', where);
    assert.ok(line.attempts.length === want.attempts.length, where);
    for (const [j, [region, status, deployment]] of want.attempts.entries()) {
      assert.equal(line.attempts[j].region, region, where);
      assert.equal(line.attempts[j].deployment, deployment, where);
      assert.equal(line.attempts[j].status, status, where);
    }
    const answered = want.attempts.at(-1);
    if (answered && answered[1] < 400) {
      assert.equal(line.region, answered[0], where);
      assert.equal(line.deployment, answered[2], where);
    }
  }
  assert.deepEqual(
    lines.map((l) => l.attempts.map((a) => a.outcome).join(',')).filter((s) => s.includes(',')),
    ['server_error,ok', 'throttled,ok'],
  );
  const ids = new Set(lines.map((l) => l.request_id));
  assert.equal(ids.size, lines.length, 'request ids are not unique');

  for (const secret of [CLIENT_KEY, BAD_KEY, upstreamKey('primary'), upstreamKey('secondary')]) {
    assert.ok(!stdout.includes(secret), `access log contains the key ${secret}`);
    assert.ok(!stack.proxyLog().includes(secret), `spillway's stderr log contains the key ${secret}`);
  }
});

test('POST /reload: a broken file is rejected (422), a fixed one accepted; counters and state survive', async () => {
  const good = stack.proxyConfig();
  const before = await scrape(stack.adminOrigin);

  await stack.writeConfig('{ "regions": [ { "name": "primary", ');
  const broken = await stack.admin('POST', '/reload');
  assert.equal(broken.status, 422, broken.text);
  assert.equal(broken.json.reloaded, false);
  assert.ok(Array.isArray(broken.json.errors) && broken.json.errors.length > 0, broken.text);
  let metrics = await scrape(stack.adminOrigin);
  assert.equal(metrics.get('spillway_config_reloads_total', { result: 'error' }), 1);
  assert.equal(metrics.get('spillway_config_reloads_total', { result: 'success' }), 0);

  // Still serving with the old config.
  await stack.setFault('primary', { mode: 'none' });
  const during = await client.embeddings.create({ model: EMBEDDING_MODEL, input: 'still up?' }).withResponse();
  assert.equal(during.response.status, 200);

  await stack.writeConfig(good);
  const fixed = await stack.admin('POST', '/reload');
  assert.equal(fixed.status, 200, fixed.text);
  assert.equal(fixed.json.reloaded, true);
  metrics = await scrape(stack.adminOrigin);
  assert.equal(metrics.get('spillway_config_reloads_total', { result: 'error' }), 1);
  assert.equal(metrics.get('spillway_config_reloads_total', { result: 'success' }), 1);

  // Counters are not reset by a reload (the embeddings request above added one).
  await stack.waitForAccessLog(expected.log.length + 1);
  metrics = await scrape(stack.adminOrigin);
  assert.equal(
    metrics.get('spillway_requests_total', { model: CHAT_MODEL, code: '200' }),
    before.get('spillway_requests_total', { model: CHAT_MODEL, code: '200' }),
  );
  assert.equal(
    metrics.get('spillway_requests_total', { model: EMBEDDING_MODEL, code: '200' }),
    before.get('spillway_requests_total', { model: EMBEDDING_MODEL, code: '200' }) + 1,
  );
  // The health state of unchanged deployments is kept: the primary is still cooling.
  const status = await stack.status();
  const primary = deploymentStatus(status, 'gpt4o-primary');
  assert.equal(primary.state, 'cooling', 'a reload of an unchanged config forgot the cooldown');
  assert.equal(primary.requests, 7);
});

