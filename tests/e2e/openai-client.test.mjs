// The plain `OpenAI` client (Authorization: Bearer) pointed at spillway, on both the OpenAI-style
// `/v1` base URL and Azure's v1 form `/openai/v1`. The mock's primary region (priority 0) is
// healthy, so it answers everything; the mock writes "Hello from {region}/{deployment} ..." into
// every completion, which ties the content to the region that produced it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

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
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

function assertAnsweredBy(response, region, deployment) {
  assert.equal(response.headers.get('x-spillway-region'), region);
  assert.equal(response.headers.get('x-spillway-deployment'), deployment);
  assert.equal(response.headers.get('x-spillway-attempts'), '1');
}

for (const prefix of ['/v1', '/openai/v1']) {
  describe(`OpenAI client, baseURL ${prefix}`, () => {
    let client;
    before(() => {
      client = new OpenAI({ baseURL: stack.origin + prefix, apiKey: CLIENT_KEY, maxRetries: 0 });
    });

    test('non-streaming chat completion', async () => {
      const { data, response } = await client.chat.completions
        .create({ model: CHAT_MODEL, messages })
        .withResponse();

      assert.equal(response.status, 200);
      assertAnsweredBy(response, 'primary', 'gpt4o-primary');
      assert.equal(data.object, 'chat.completion');
      assert.equal(data.choices.length, 1);
      const content = data.choices[0].message.content;
      assert.equal(typeof content, 'string');
      assert.ok(content.length > 0);
      assert.match(content, /primary\/gpt4o-primary/);
      assert.equal(data.choices[0].message.role, 'assistant');
      assert.equal(data.choices[0].finish_reason, 'stop');
      assert.ok(data.usage.total_tokens > 0);
      assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);

      const upstream = (await stack.stats('primary')).last_request;
      assert.equal(upstream.method, 'POST');
      // Upstream is an Azure region: the deployment goes into the path.
      assert.match(
        upstream.target,
        /^\/openai\/deployments\/gpt4o-primary\/chat\/completions\?api-version=/,
      );
    });

    test('streaming chat completion', async () => {
      const { data: stream, response } = await client.chat.completions
        .create({ model: CHAT_MODEL, messages, stream: true })
        .withResponse();

      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type'), /^text\/event-stream/);
      assertAnsweredBy(response, 'primary', 'gpt4o-primary');
      const { chunks, text } = await collectChatStream(stream);
      const withContent = chunks.filter((c) => c.choices?.[0]?.delta?.content);
      assert.ok(withContent.length >= 5, `only ${withContent.length} content chunks`);
      assert.ok(text.length > 0);
      assert.match(text, /^Hello from primary\/gpt4o-primary/);
      assert.ok(
        chunks.some((c) => c.choices?.[0]?.finish_reason === 'stop'),
        'no chunk with finish_reason "stop"',
      );
    });

    test('streaming chat completion with include_usage ends with a usage chunk', async () => {
      const stream = await client.chat.completions.create({
        model: CHAT_MODEL,
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      const { chunks, text } = await collectChatStream(stream);
      assert.ok(chunks.length >= 5, `only ${chunks.length} chunks`);
      assert.match(text, /primary\/gpt4o-primary/);

      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage, 'last chunk has no usage');
      assert.ok(last.usage.completion_tokens > 0);
      assert.ok(last.usage.total_tokens > 0);
      // Only the final chunk carries usage.
      for (const chunk of chunks.slice(0, -1)) assert.ok(chunk.usage == null);
    });

    test('embeddings (SDK default base64 encoding, decoded by the SDK)', async () => {
      const { data, response } = await client.embeddings
        .create({ model: EMBEDDING_MODEL, input: 'The quick brown fox' })
        .withResponse();

      assertAnsweredBy(response, 'primary', 'emb-primary');
      assert.equal(data.data.length, 1);
      const vector = data.data[0].embedding;
      assert.ok(vector.length > 0);
      assert.ok(vector.every((x) => Number.isFinite(x)));
      assert.ok(data.usage.total_tokens > 0);
    });

    test('embeddings with encoding_format float and two inputs', async () => {
      const result = await client.embeddings.create({
        model: EMBEDDING_MODEL,
        input: ['first input', 'second input'],
        encoding_format: 'float',
      });
      assert.equal(result.data.length, 2);
      assert.deepEqual(
        result.data.map((d) => d.index),
        [0, 1],
      );
      for (const d of result.data) {
        assert.ok(Array.isArray(d.embedding));
        assert.ok(d.embedding.length > 0);
        assert.ok(d.embedding.every((x) => typeof x === 'number'));
      }
    });

    test('models.list returns the configured models', async () => {
      const ids = [];
      for await (const model of client.models.list()) ids.push(model.id);
      assert.deepEqual(ids.sort(), [CHAT_MODEL, EMBEDDING_MODEL].sort());
    });

    test('the upstream sees the region key, never the client key', async () => {
      await client.chat.completions.create({ model: CHAT_MODEL, messages });
      const upstream = (await stack.stats('primary')).last_request;
      assert.equal(recordedHeader(upstream.headers, 'api-key'), upstreamKey('primary'));
      assert.equal(recordedHeader(upstream.headers, 'authorization'), undefined);
      assert.ok(
        !JSON.stringify(upstream).includes(CLIENT_KEY),
        `client key leaked upstream: ${JSON.stringify(upstream.headers)}`,
      );
    });
  });
}

test('Responses API through /v1/responses', async () => {
  const client = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  const { data, response } = await client.responses
    .create({ model: CHAT_MODEL, input: 'Say hello.' })
    .withResponse();
  assertAnsweredBy(response, 'primary', 'gpt4o-primary');
  assert.equal(data.status, 'completed');
  assert.match(data.output_text, /primary\/gpt4o-primary/);
  assert.ok(data.usage.total_tokens > 0);
});
