// SIGTERM drains: spillway stops accepting, lets in-flight requests finish, then exits 0 — also
// while an SDK client still holds an idle keep-alive connection to it.

import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { CHAT_MODEL, CLIENT_KEY, collectChatStream, startStack } from './harness.mjs';

const messages = [{ role: 'user', content: 'Say hello.' }];

let stack;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

test('SIGTERM after SDK traffic (idle keep-alive connection open) exits 0', async () => {
  stack = await startStack();
  const client = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  const completion = await client.chat.completions.create({ model: CHAT_MODEL, messages });
  assert.match(completion.choices[0].message.content, /primary/);

  const exit = await stack.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `spillway log:\n${stack.proxyLog()}`);
});

test('SIGTERM during a stream: the stream completes, then spillway exits 0', async () => {
  stack = await startStack();
  // 20 tokens, 20 ms apart: the stream is still running when SIGTERM arrives.
  await stack.setLatency('primary', { token_ms: 20 });
  const client = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: CHAT_MODEL,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });

  let signalled = false;
  const { chunks, text } = await collectChatStream(
    (async function* () {
      for await (const chunk of stream) {
        if (!signalled && chunk.choices?.[0]?.delta?.content) {
          signalled = true;
          stack.proxy.kill('SIGTERM');
        }
        yield chunk;
      }
    })(),
  );
  assert.ok(signalled);
  assert.match(text, /^Hello from primary\/gpt4o-primary/);
  assert.ok(chunks.some((c) => c.choices?.[0]?.finish_reason === 'stop'), 'stream cut short');
  assert.ok(chunks.at(-1).usage?.completion_tokens === 20, 'no final usage chunk');

  const exit = await stack.proxy.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, `spillway log:\n${stack.proxyLog()}`);
});
