// SPEC §3: spillway's x-ratelimit-remaining-{requests,tokens} are its estimate of the headroom
// left across ALL available deployments of the model — not one region's header passed through —
// so a client pacing itself on them sees the pooled capacity it actually has.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { CHAT_MODEL, CLIENT_KEY, startStack } from './harness.mjs';

const TPM = 60_000; // per gpt-4o deployment; two deployments (primary, secondary)

let stack;
before(async () => {
  stack = await startStack({ chatTpm: TPM });
});
after(async () => {
  await stack?.stop();
});

test('x-ratelimit-remaining-* reflect the headroom of every gpt-4o deployment together', async () => {
  const client = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  const { response } = await client.chat.completions
    .create({
      model: CHAT_MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Say hello.' }],
    })
    .withResponse();
  assert.equal(response.headers.get('x-spillway-region'), 'primary');

  const tokens = response.headers.get('x-ratelimit-remaining-tokens');
  const requests = response.headers.get('x-ratelimit-remaining-requests');
  assert.match(tokens ?? '', /^\d+$/, `x-ratelimit-remaining-tokens: ${tokens}`);
  assert.match(requests ?? '', /^\d+$/, `x-ratelimit-remaining-requests: ${requests}`);
  // One deployment alone can never have more than TPM left; the untouched secondary adds its own.
  assert.ok(
    Number(tokens) > TPM && Number(tokens) <= 2 * TPM,
    `x-ratelimit-remaining-tokens ${tokens} is not a pooled estimate over two ${TPM}-TPM deployments`,
  );
});
