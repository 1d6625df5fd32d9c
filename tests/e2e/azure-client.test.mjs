// The `AzureOpenAI` client (api-key header, classic URLs
// `/openai/deployments/{model}/...?api-version=...`) pointed at spillway, with `model` being either
// the configured model name or a regional deployment name used as an alias for it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AzureOpenAI } from 'openai';

import {
  CHAT_MODEL,
  CLIENT_KEY,
  EMBEDDING_MODEL,
  collectChatStream,
  recordedHeader,
  startStack,
  upstreamKey,
} from './harness.mjs';

const API_VERSION = '2024-10-21';
const messages = [{ role: 'user', content: 'Say hello.' }];

let stack;
let client;
before(async () => {
  stack = await startStack();
  client = new AzureOpenAI({
    endpoint: stack.origin,
    apiKey: CLIENT_KEY,
    apiVersion: API_VERSION,
    maxRetries: 0,
  });
});
after(async () => {
  await stack?.stop();
});

// Both names route to the model gpt-4o; its priority-0 deployment is in the healthy primary region,
// so that is who answers in either case.
for (const model of [CHAT_MODEL, 'gpt4o-secondary']) {
  describe(`AzureOpenAI client, model "${model}"`, () => {
    test('non-streaming chat completion', async () => {
      const { data, response } = await client.chat.completions
        .create({ model, messages })
        .withResponse();

      // The SDK really used the classic deployment URL.
      assert.equal(
        new URL(response.url).pathname,
        `/openai/deployments/${model}/chat/completions`,
      );
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-spillway-region'), 'primary');
      assert.equal(response.headers.get('x-spillway-deployment'), 'gpt4o-primary');
      const content = data.choices[0].message.content;
      assert.equal(typeof content, 'string');
      assert.match(content, /^Hello from primary\/gpt4o-primary/);
      assert.ok(data.usage.total_tokens > 0);

      // Upstream got the region's own deployment name and the configured api-version.
      const upstream = (await stack.stats('primary')).last_request;
      assert.equal(
        upstream.target,
        `/openai/deployments/gpt4o-primary/chat/completions?api-version=${API_VERSION}`,
      );
      assert.equal(recordedHeader(upstream.headers, 'api-key'), upstreamKey('primary'));
      assert.ok(!JSON.stringify(upstream).includes(CLIENT_KEY), 'client key leaked upstream');
    });

    test('streaming chat completion with include_usage', async () => {
      const { data: stream, response } = await client.chat.completions
        .create({ model, messages, stream: true, stream_options: { include_usage: true } })
        .withResponse();

      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type'), /^text\/event-stream/);
      assert.equal(response.headers.get('x-spillway-region'), 'primary');
      const { chunks, text } = await collectChatStream(stream);
      const withContent = chunks.filter((c) => c.choices?.[0]?.delta?.content);
      assert.ok(withContent.length >= 5, `only ${withContent.length} content chunks`);
      assert.match(text, /^Hello from primary\/gpt4o-primary/);
      // Azure's quirk: a leading chunk with no choices but prompt_filter_results survives the relay.
      assert.ok(
        chunks.some((c) => c.choices?.length === 0 && c.prompt_filter_results),
        'no prompt_filter_results chunk',
      );
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage?.total_tokens > 0, 'no final usage chunk');
    });
  });
}

for (const model of [EMBEDDING_MODEL, 'emb-secondary']) {
  test(`AzureOpenAI client, embeddings with model "${model}"`, async () => {
    const { data, response } = await client.embeddings
      .create({ model, input: ['alpha', 'beta'] })
      .withResponse();
    assert.equal(new URL(response.url).pathname, `/openai/deployments/${model}/embeddings`);
    assert.equal(response.headers.get('x-spillway-region'), 'primary');
    assert.equal(response.headers.get('x-spillway-deployment'), 'emb-primary');
    assert.equal(data.data.length, 2);
    for (const d of data.data) {
      assert.ok(d.embedding.length > 0);
      assert.ok(d.embedding.every((x) => Number.isFinite(x)));
    }

    const upstream = (await stack.stats('primary')).last_request;
    assert.equal(
      upstream.target,
      `/openai/deployments/emb-primary/embeddings?api-version=${API_VERSION}`,
    );
    assert.equal(recordedHeader(upstream.headers, 'api-key'), upstreamKey('primary'));
    assert.ok(!JSON.stringify(upstream).includes(CLIENT_KEY), 'client key leaked upstream');
  });
}

test('AzureOpenAI client with a fixed deployment (baseURL .../deployments/{name})', async () => {
  const pinned = new AzureOpenAI({
    endpoint: stack.origin,
    deployment: 'gpt4o-secondary',
    apiKey: CLIENT_KEY,
    apiVersion: API_VERSION,
    maxRetries: 0,
  });
  const { data, response } = await pinned.chat.completions
    .create({ model: 'ignored-by-azure-urls', messages })
    .withResponse();
  assert.equal(
    new URL(response.url).pathname,
    '/openai/deployments/gpt4o-secondary/chat/completions',
  );
  assert.equal(response.headers.get('x-spillway-region'), 'primary');
  assert.match(data.choices[0].message.content, /primary\/gpt4o-primary/);
});
