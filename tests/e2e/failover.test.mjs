// Failover is invisible to the SDK: with the SDK's own retries disabled (maxRetries: 0), a call
// still succeeds when the primary region throttles, is down or fails, because spillway retries on
// the secondary region. Every scenario gets a fresh stack, so no health state (cooldowns, failure
// counts) leaks from one scenario into the next.

import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError, AzureOpenAI, RateLimitError } from 'openai';

import {
  CHAT_MODEL,
  CLIENT_KEY,
  EMBEDDING_MODEL,
  collectChatStream,
  recordedHeader,
  startStack,
  upstreamKey,
} from './harness.mjs';

const messages = [{ role: 'user', content: 'Say hello.' }];

let stack;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

async function freshStack(options = {}) {
  stack = await startStack(options);
  return {
    openai: new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 }),
    azure: new AzureOpenAI({
      endpoint: stack.origin,
      apiKey: CLIENT_KEY,
      apiVersion: '2024-10-21',
      maxRetries: 0,
    }),
  };
}

function assertFromSecondary(response, deployment = 'gpt4o-secondary') {
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-spillway-region'), 'secondary');
  assert.equal(response.headers.get('x-spillway-deployment'), deployment);
}

async function assertSecondaryGotRegionKey(deployment = 'gpt4o-secondary') {
  const upstream = (await stack.stats('secondary')).last_request;
  assert.match(upstream.target, new RegExp(`^/openai/deployments/${deployment}/`));
  assert.equal(recordedHeader(upstream.headers, 'api-key'), upstreamKey('secondary'));
  assert.ok(!JSON.stringify(upstream).includes(CLIENT_KEY), 'client key leaked upstream');
}

test('primary throttles (429, retry-after 3 s): answered by secondary, then primary is skipped', async () => {
  const { openai, azure } = await freshStack();
  await stack.setFault('primary', { mode: 'throttle', retry_after_ms: 3000 });

  const { data, response } = await openai.chat.completions
    .create({ model: CHAT_MODEL, messages })
    .withResponse();
  assertFromSecondary(response);
  assert.equal(response.headers.get('x-spillway-attempts'), '2');
  assert.match(data.choices[0].message.content, /^Hello from secondary\/gpt4o-secondary/);
  assert.ok(data.usage.total_tokens > 0);

  const primary = await stack.stats('primary');
  assert.equal(primary.requests, 1);
  assert.equal(primary.by_status['429'], 1);
  await assertSecondaryGotRegionKey();

  // While the primary cools down, spillway does not even try it: one attempt, straight to secondary.
  const stream = await azure.chat.completions
    .create({ model: CHAT_MODEL, messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  assertFromSecondary(stream.response);
  assert.equal(
    stream.response.headers.get('x-spillway-attempts'),
    '1',
    'the primary answered 429 with retry-after-ms 3000, so it must be cooling down and not be tried',
  );
  const { chunks, text } = await collectChatStream(stream.data);
  assert.match(text, /^Hello from secondary\/gpt4o-secondary/);
  assert.ok(chunks.at(-1).usage?.total_tokens > 0);
  assert.equal((await stack.stats('primary')).requests, 1, 'primary was tried during its cooldown');
});

test('primary throttles: a streaming request fails over before its first byte', async () => {
  const { openai } = await freshStack();
  await stack.setFault('primary', { mode: 'throttle', retry_after_ms: 3000 });

  const { data: stream, response } = await openai.chat.completions
    .create({ model: CHAT_MODEL, messages, stream: true })
    .withResponse();
  assertFromSecondary(response);
  assert.equal(response.headers.get('x-spillway-attempts'), '2');
  const { chunks, text } = await collectChatStream(stream);
  assert.ok(chunks.length >= 5, `only ${chunks.length} chunks`);
  assert.match(text, /^Hello from secondary\/gpt4o-secondary/);
  assert.equal((await stack.stats('primary')).by_status['429'], 1);
});

test('primary is down (connection refused): answered by secondary', async () => {
  const { openai, azure } = await freshStack();
  await stack.setFault('primary', { mode: 'down' });

  const { data, response } = await openai.chat.completions
    .create({ model: CHAT_MODEL, messages })
    .withResponse();
  assertFromSecondary(response);
  assert.equal(response.headers.get('x-spillway-attempts'), '2');
  assert.match(data.choices[0].message.content, /secondary\/gpt4o-secondary/);
  await assertSecondaryGotRegionKey();

  const stream = await azure.chat.completions
    .create({ model: CHAT_MODEL, messages, stream: true })
    .withResponse();
  assertFromSecondary(stream.response);
  const { text } = await collectChatStream(stream.data);
  assert.match(text, /^Hello from secondary\/gpt4o-secondary/);

  const emb = await azure.embeddings
    .create({ model: EMBEDDING_MODEL, input: 'failover' })
    .withResponse();
  assertFromSecondary(emb.response, 'emb-secondary');
  assert.ok(emb.data.data[0].embedding.length > 0);
  await assertSecondaryGotRegionKey('emb-secondary');

  // The primary never saw a request.
  assert.equal((await stack.stats('primary')).requests, 0);
});

test('primary answers 503: answered by secondary', async () => {
  const { openai } = await freshStack();
  await stack.setFault('primary', { mode: 'error', status: 503 });

  const { data, response } = await openai.chat.completions
    .create({ model: CHAT_MODEL, messages })
    .withResponse();
  assertFromSecondary(response);
  assert.equal(response.headers.get('x-spillway-attempts'), '2');
  assert.match(data.choices[0].message.content, /secondary\/gpt4o-secondary/);
  assert.equal((await stack.stats('primary')).by_status['503'], 1);
});

test('primary resets the connection before answering: answered by secondary', async () => {
  const { openai } = await freshStack();
  await stack.setFault('primary', { mode: 'reset' });

  const { data, response } = await openai.chat.completions
    .create({ model: CHAT_MODEL, messages })
    .withResponse();
  assertFromSecondary(response);
  assert.match(data.choices[0].message.content, /secondary\/gpt4o-secondary/);
});

test('every region throttled: RateLimitError 429 with retry-after-ms the SDK would honour', async () => {
  const { openai } = await freshStack();
  await stack.setFault('primary', { mode: 'throttle', retry_after_ms: 3000 });
  await stack.setFault('secondary', { mode: 'throttle', retry_after_ms: 5000 });

  await assert.rejects(openai.chat.completions.create({ model: CHAT_MODEL, messages }), (err) => {
    assert.ok(err instanceof RateLimitError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 429);
    assert.equal(typeof err.error?.message, 'string');
    assert.equal(typeof err.code, 'string');
    const retryAfterMs = Number(err.headers.get('retry-after-ms'));
    assert.ok(retryAfterMs > 0 && retryAfterMs <= 60_000, `retry-after-ms ${retryAfterMs}`);
    const retryAfter = Number(err.headers.get('retry-after'));
    assert.ok(retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter}`);
    return true;
  });
});

// A stream answered by the primary whose iteration fails: the text that came before, and the
// error (the SDK turns a `data: {"error": {...}}` event into an APIError carrying that object).
async function streamEndingInError(openai) {
  const { data: stream, response } = await openai.chat.completions
    .create({ model: CHAT_MODEL, messages, stream: true })
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-spillway-region'), 'primary');
  let text = '';
  let error;
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) text += chunk.choices?.[0]?.delta?.content ?? '';
    })(),
    (err) => {
      assert.ok(err instanceof APIError, `got ${err?.constructor?.name}: ${err}`);
      error = err;
      return true;
    },
  );
  return { text, error };
}

// A stream that is never ended waits until the HTTP client gives up (undici: 5 minutes); fail sooner.
test('upstream failure after the first byte ends the stream with an error event', { timeout: 30_000 }, async () => {
  const { openai } = await freshStack();
  // Pace the tokens so that the first events have reached the client before the cut.
  await stack.setLatency('primary', { token_ms: 20 });
  await stack.setFault('primary', { mode: 'reset', after_chunks: 3 });

  const { text, error } = await streamEndingInError(openai);
  assert.equal(typeof error.error?.message, 'string');
  assert.match(text, /^Hello/);
  assert.doesNotMatch(text, /secondary/);
});

// An upstream that goes silent partway through its answer (the mock's `stall`: no more bytes, the
// connection left open) is given up after routing.stream_idle_timeout_ms, not the whole deadline.
const stallLimit = { proxy: { routing: { stream_idle_timeout_ms: 300 } } };

async function retriesOf(region, reason) {
  const { text } = await stack.admin('GET', '/metrics');
  const line = text.split('\n').find((l) => l.startsWith('spillway_retries_total{') && l.includes(`region="${region}"`) &&
    l.includes(`reason="${reason}"`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

test('primary stalls after its head: the stream fails over before its first byte', { timeout: 30_000 }, async () => {
  const { openai } = await freshStack(stallLimit);
  await stack.setFault('primary', { mode: 'stall', after_chunks: 0 });

  const started = Date.now();
  const { data: stream, response } = await openai.chat.completions
    .create({ model: CHAT_MODEL, messages, stream: true })
    .withResponse();
  assertFromSecondary(response);
  assert.equal(response.headers.get('x-spillway-attempts'), '2');
  const { text } = await collectChatStream(stream);
  assert.match(text, /^Hello from secondary\/gpt4o-secondary/);
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  assert.equal((await stack.stats('primary')).requests, 1);
  assert.equal(await retriesOf('primary', 'timeout'), 1);
  const [line] = await stack.waitForAccessLog(1);
  assert.deepEqual(line.attempts.map((a) => [a.region, a.outcome]), [['primary', 'stalled'], ['secondary', 'ok']]);
});

test('a stream that stalls after its first events ends with an error event naming the idle limit', { timeout: 30_000 }, async () => {
  const { openai } = await freshStack(stallLimit);
  await stack.setLatency('primary', { token_ms: 20 });
  await stack.setFault('primary', { mode: 'stall', after_chunks: 3 });

  const { text, error } = await streamEndingInError(openai);
  assert.match(error.error?.message ?? '', /sent nothing for 300 ms \(routing\.stream_idle_timeout_ms\)/);
  assert.match(text, /^Hello/);
  assert.doesNotMatch(text, /secondary/);
});

test('every region stalls: 504 upstream_stalled after the idle limit, not the deadline', { timeout: 30_000 }, async () => {
  const { openai } = await freshStack(stallLimit);
  await stack.setFault('primary', { mode: 'stall', after_chunks: 0 });
  await stack.setFault('secondary', { mode: 'stall', after_chunks: 0 });

  const started = Date.now();
  await assert.rejects(openai.chat.completions.create({ model: CHAT_MODEL, messages, stream: true }), (err) => {
    assert.ok(err instanceof APIError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 504);
    assert.equal(err.code, 'upstream_stalled');
    assert.match(err.error?.message ?? '', /sent nothing for 300 ms/);
    return true;
  });
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});

test('a non-streaming answer that stalls midway is cut off after the idle limit', { timeout: 30_000 }, async () => {
  const { openai } = await freshStack(stallLimit);
  await stack.setFault('primary', { mode: 'stall' });

  const started = Date.now();
  // Half the body has reached the client: too late to fail over, so the answer is cut short.
  await assert.rejects(openai.chat.completions.create({ model: CHAT_MODEL, messages }));
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  assert.equal((await stack.stats('secondary')).requests, 0);
});

test('stream_idle_timeout_ms 0 leaves a slow stream to the deadline alone', { timeout: 30_000 }, async () => {
  const { openai } = await freshStack({ proxy: { routing: { stream_idle_timeout_ms: 0 } } });
  // A pause between events; with the limit off, no wait is cut short.
  await stack.setLatency('primary', { token_ms: 30 });

  const { data: stream, response } = await openai.chat.completions
    .create({ model: CHAT_MODEL, messages, stream: true })
    .withResponse();
  assert.equal(response.headers.get('x-spillway-region'), 'primary');
  assert.equal(response.headers.get('x-spillway-attempts'), '1');
  const { chunks, text } = await collectChatStream(stream);
  assert.ok(chunks.length >= 5, `only ${chunks.length} chunks`);
  assert.match(text, /^Hello from primary\/gpt4o-primary/);
});
