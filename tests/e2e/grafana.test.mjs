// The shipped Grafana dashboard (docker/grafana/spillway-dashboard.json) must only query metrics
// that spillway exports: every spillway_* name in its PromQL appears in a real /metrics scrape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import OpenAI from 'openai';

import { CHAT_MODEL, CLIENT_KEY, startStack } from './harness.mjs';

let stack;

before(async () => {
  stack = await startStack({ chatTpm: 60000 });  // with a quota, so the headroom gauges exist
});
after(async () => {
  await stack?.stop();
});

test('every metric the Grafana dashboard queries is exported by spillway', async () => {
  // Traffic first, so that request-labelled series exist.
  const client = new OpenAI({ baseURL: `${stack.origin}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  await client.chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }] });

  const dashboard = JSON.parse(
    await readFile(new URL('../../docker/grafana/spillway-dashboard.json', import.meta.url), 'utf8'),
  );
  const queried = new Set();
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      for (const m of target.expr.matchAll(/spillway_[a-z_]+/g)) {
        queried.add(m[0].replace(/_(bucket|sum|count)$/, ''));
      }
    }
  }
  assert.ok(queried.size >= 10, `expected the dashboard to query many metrics, found ${[...queried]}`);

  const { text } = await stack.admin('GET', '/metrics');
  const exported = new Set([...text.matchAll(/^# TYPE (spillway_[a-z_]+) /gm)].map((m) => m[1]));
  for (const name of queried) assert.ok(exported.has(name), `dashboard queries ${name}, which /metrics does not export`);
});
