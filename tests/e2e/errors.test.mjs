// spillway's own errors reach the SDK as typed exceptions with an OpenAI-shaped body
// ({"error": {"message", "type", "code"}}), and requests it rejects never reach a region.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, {
  AuthenticationError,
  AzureOpenAI,
  BadRequestError,
  NotFoundError,
} from 'openai';

import { CHAT_MODEL, CLIENT_KEY, EMBEDDING_MODEL, startStack } from './harness.mjs';

const messages = [{ role: 'user', content: 'Say hello.' }];

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

function openai(apiKey, prefix = '/v1') {
  return new OpenAI({ baseURL: stack.origin + prefix, apiKey, maxRetries: 0 });
}
function azure(apiKey) {
  return new AzureOpenAI({
    endpoint: stack.origin,
    apiKey,
    apiVersion: '2024-10-21',
    maxRetries: 0,
  });
}

// The SDK exposes the parsed error object as `.error` and its fields as `.code` / `.type`.
function assertOpenAIShaped(err, status) {
  assert.equal(err.status, status);
  assert.equal(typeof err.error, 'object', 'error body is not an OpenAI error envelope');
  assert.notEqual(err.error, null);
  assert.equal(typeof err.error.message, 'string');
  assert.ok(err.error.message.length > 0);
  assert.equal(typeof err.type, 'string');
  assert.equal(typeof err.code, 'string');
  assert.ok(err.code.length > 0);
}

async function totalUpstreamRequests() {
  const [a, b] = await Promise.all([stack.stats('primary'), stack.stats('secondary')]);
  return a.requests + b.requests;
}

test('wrong key (Bearer) -> AuthenticationError 401, nothing sent upstream', async () => {
  const sentBefore = await totalUpstreamRequests();
  for (const prefix of ['/v1', '/openai/v1']) {
    await assert.rejects(
      openai('sk-wrong', prefix).chat.completions.create({ model: CHAT_MODEL, messages }),
      (err) => {
        assert.ok(err instanceof AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
        assertOpenAIShaped(err, 401);
        return true;
      },
    );
  }
  await assert.rejects(
    openai('sk-wrong').embeddings.create({ model: EMBEDDING_MODEL, input: 'x' }),
    AuthenticationError,
  );
  assert.equal(await totalUpstreamRequests(), sentBefore);
});

test('wrong key (api-key, AzureOpenAI) -> AuthenticationError 401', async () => {
  const sentBefore = await totalUpstreamRequests();
  await assert.rejects(
    azure('sk-wrong').chat.completions.create({ model: CHAT_MODEL, messages }),
    (err) => {
      assert.ok(err instanceof AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
      assertOpenAIShaped(err, 401);
      return true;
    },
  );
  // A streaming request is rejected the same way, before any stream starts.
  await assert.rejects(
    azure('sk-wrong').chat.completions.create({ model: CHAT_MODEL, messages, stream: true }),
    AuthenticationError,
  );
  assert.equal(await totalUpstreamRequests(), sentBefore);
});

test('a key that merely starts with the right one is rejected', async () => {
  await assert.rejects(
    openai(`${CLIENT_KEY}x`).chat.completions.create({ model: CHAT_MODEL, messages }),
    AuthenticationError,
  );
});

test('unknown model -> NotFoundError 404 model_not_found', async () => {
  const sentBefore = await totalUpstreamRequests();
  for (const prefix of ['/v1', '/openai/v1']) {
    await assert.rejects(
      openai(CLIENT_KEY, prefix).chat.completions.create({ model: 'gpt-9-ultra', messages }),
      (err) => {
        assert.ok(err instanceof NotFoundError, `got ${err?.constructor?.name}: ${err}`);
        assertOpenAIShaped(err, 404);
        assert.equal(err.code, 'model_not_found');
        return true;
      },
    );
  }
  await assert.rejects(
    openai(CLIENT_KEY).chat.completions.create({ model: 'gpt-9-ultra', messages, stream: true }),
    NotFoundError,
  );
  assert.equal(await totalUpstreamRequests(), sentBefore);
});

test('unknown deployment (AzureOpenAI) -> NotFoundError 404 model_not_found', async () => {
  await assert.rejects(
    azure(CLIENT_KEY).chat.completions.create({ model: 'no-such-deployment', messages }),
    (err) => {
      assert.ok(err instanceof NotFoundError, `got ${err?.constructor?.name}: ${err}`);
      assertOpenAIShaped(err, 404);
      assert.equal(err.code, 'model_not_found');
      return true;
    },
  );
  await assert.rejects(
    azure(CLIENT_KEY).embeddings.create({ model: 'no-such-deployment', input: 'x' }),
    NotFoundError,
  );
});

test('missing model -> BadRequestError 400', async () => {
  await assert.rejects(
    openai(CLIENT_KEY).chat.completions.create({ messages }),
    (err) => {
      assert.ok(err instanceof BadRequestError, `got ${err?.constructor?.name}: ${err}`);
      assertOpenAIShaped(err, 400);
      return true;
    },
  );
});
