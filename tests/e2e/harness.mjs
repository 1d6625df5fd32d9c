// Test harness for the end-to-end suite: starts spillway-mock (simulated Azure OpenAI regions) and
// spillway in front of it, both on port 0 with temporary config files, waits until each is ready,
// and stops them again. Used by every *.test.mjs file in this directory.
//
// Binaries come from SPILLWAY_BIN / SPILLWAY_MOCK_BIN, defaulting to the release build of this
// checkout (../../build/release/bin/...).

import { spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const SPILLWAY_BIN =
  process.env.SPILLWAY_BIN || path.resolve(here, '../../build/release/bin/spillway');
export const SPILLWAY_MOCK_BIN =
  process.env.SPILLWAY_MOCK_BIN || path.resolve(here, '../../build/release/bin/spillway-mock');

/** The key clients send to spillway. */
export const CLIENT_KEY = 'sk-e2e';
export const CHAT_MODEL = 'gpt-4o';
export const EMBEDDING_MODEL = 'text-embedding-3-small';

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

// Children still running; killed hard if the test process exits without stopping them.
const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Upstream key the mock expects for (and spillway sends to) a region. */
export function upstreamKey(region) {
  return `upstream-key-${region}`;
}

/** Default topology: "primary" (priority 0) and "secondary" (priority 1), both serving both models. */
export const DEFAULT_REGIONS = [
  { name: 'primary', priority: 0 },
  { name: 'secondary', priority: 1 },
];

// The same deployments, with the same quota, in the mock and in spillway's config.
function deploymentsOf(region, chatTpm) {
  const chat = { model: CHAT_MODEL, name: `gpt4o-${region}` };
  if (chatTpm) chat.tpm = chatTpm;
  return [chat, { model: EMBEDDING_MODEL, name: `emb-${region}` }];
}

function spawnChild(bin, args) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.output = { stdout: '', stderr: '' };
  child.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (s) => (child.output.stdout += s));
  child.stderr.on('data', (s) => (child.output.stderr += s));
  return child;
}

// Resolves with the first match of `pattern` in the child's `stream` output (checked as data
// arrives), or rejects if the child exits or the timeout passes first.
function waitForOutput(child, stream, pattern, what) {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child[stream].off('data', check);
      child.off('exit', onExit);
      fn(value);
    };
    const describe = () =>
      `${what}\n--- stdout ---\n${child.output.stdout}\n--- stderr ---\n${child.output.stderr}`;
    const check = () => {
      const m = child.output[stream].match(pattern);
      if (m) finish(resolve, m);
    };
    const onExit = (code, signal) =>
      finish(reject, new Error(`exited (code ${code}, signal ${signal}) before ready: ${describe()}`));
    const timer = setTimeout(
      () => finish(reject, new Error(`not ready after ${READY_TIMEOUT_MS} ms: ${describe()}`)),
      READY_TIMEOUT_MS,
    );
    // Listen after the harness' own accumulating listener, so output.* already holds the chunk.
    child[stream].on('data', check);
    child.on('exit', onExit);
    check();
  });
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  child.kill('SIGTERM');
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
  });
  const result = await Promise.race([child.exited, timeout]);
  clearTimeout(timer);
  if (result !== 'timeout') return result;
  child.kill('SIGKILL');
  const killed = await child.exited;
  return { ...killed, timedOut: true };
}

/**
 * Starts spillway-mock with one simulated region per entry of `regions`, then spillway in front of
 * them. Options:
 *   regions: [{ name, priority }]   (default DEFAULT_REGIONS); optional per region: weight and
 *            data_zone (spillway's region config) and chatTpm (overrides options.chatTpm for that
 *            region, in the mock and in spillway's config alike)
 *   completionTokens: tokens per generated answer (default 20)
 *   chatTpm: tokens-per-minute quota of every gpt-4o deployment (default: unlimited)
 *   proxy: extra top-level keys merged into spillway's config (e.g. { routing: {...} })
 * Returns a handle with spillway's origin (http://127.0.0.1:PORT), the mock control API and stop().
 */
export async function startStack(options = {}) {
  const regions = options.regions ?? DEFAULT_REGIONS;
  for (const bin of [SPILLWAY_MOCK_BIN, SPILLWAY_BIN]) {
    if (!existsSync(bin)) {
      throw new Error(`binary not found: ${bin} (build it, or set SPILLWAY_BIN / SPILLWAY_MOCK_BIN)`);
    }
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'spillway-e2e-'));
  const children = [];
  try {
    const mockConfig = {
      regions: regions.map((r) => ({
        name: r.name,
        port: 0,
        api_key: upstreamKey(r.name),
        ttft_ms: 0,
        token_ms: 0,
        completion_tokens: options.completionTokens ?? 20,
        deployments: deploymentsOf(r.name, r.chatTpm ?? options.chatTpm),
      })),
    };
    const mockConfigFile = path.join(dir, 'mock.json');
    await writeFile(mockConfigFile, JSON.stringify(mockConfig, null, 2));
    const mock = spawnChild(SPILLWAY_MOCK_BIN, ['--config', mockConfigFile]);
    children.push(mock);
    // Whole lines only (the trailing newline), so a half-written line is never parsed.
    const [, line] = await waitForOutput(mock, 'stdout', /^(\{.*\})\r?\n/m, 'spillway-mock');
    const mockInfo = JSON.parse(line);
    const controlURL = `http://127.0.0.1:${mockInfo.control_port}`;

    const proxyConfig = {
      listen: { address: '127.0.0.1', port: 0 },
      admin: { address: '127.0.0.1', port: 0 },
      workers: 1,
      auth: { keys: [{ name: 'e2e', key: CLIENT_KEY }] },
      regions: regions.map((r) => ({
        name: r.name,
        endpoint: `http://127.0.0.1:${mockInfo.regions[r.name]}`,
        api_key: upstreamKey(r.name),
        priority: r.priority,
        ...(r.weight === undefined ? {} : { weight: r.weight }),
        ...(r.data_zone === undefined ? {} : { data_zone: r.data_zone }),
        deployments: deploymentsOf(r.name, r.chatTpm ?? options.chatTpm),
      })),
      ...(options.proxy ?? {}),
    };
    const proxyConfigFile = path.join(dir, 'spillway.json');
    await writeFile(proxyConfigFile, JSON.stringify(proxyConfig, null, 2));
    const proxy = spawnChild(SPILLWAY_BIN, ['--config', proxyConfigFile]);
    children.push(proxy);
    const m = await waitForOutput(
      proxy,
      'stderr',
      /listening: data ([\d.]+):(\d+)\b.*admin ([\d.]+):(\d+)\r?\n/,
      'spillway',
    );
    const port = Number(m[2]);
    const adminPort = Number(m[4]);
    const origin = `http://127.0.0.1:${port}`;

    async function control(method, target, body) {
      const res = await fetch(controlURL + target, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`mock control ${method} ${target} -> ${res.status}: ${text}`);
      return text ? JSON.parse(text) : undefined;
    }

    let stopped;
    return {
      origin, // http://127.0.0.1:PORT
      port,
      adminPort,
      mockPorts: mockInfo.regions,
      proxy,
      mock,
      /** Injects a fault in one simulated region: { mode, status, retry_after_ms, after_chunks }. */
      setFault: (region, fault) => control('POST', `/regions/${region}/fault`, fault),
      /** Changes one region's pacing: { ttft_ms, token_ms } (absent fields are kept). */
      setLatency: (region, latency) => control('POST', `/regions/${region}/latency`, latency),
      /** { requests, by_status, last_request: { method, target, headers, body } } of one region. */
      stats: (region) => control('GET', `/regions/${region}/stats`),
      resetMock: () => control('POST', '/reset'),
      /** spillway's admin `GET /status` (JSON: models, regions, deployments[]). */
      async status() {
        const res = await fetch(`http://127.0.0.1:${adminPort}/status`);
        const text = await res.text();
        if (!res.ok) throw new Error(`admin GET /status -> ${res.status}: ${text}`);
        return JSON.parse(text);
      },
      /** spillway's log so far (stderr). */
      proxyLog: () => proxy.output.stderr,
      /** spillway's admin origin, http://127.0.0.1:ADMIN_PORT. */
      adminOrigin: `http://127.0.0.1:${adminPort}`,
      /** Path of spillway's config file (what SIGHUP and POST /reload re-read). */
      configFile: proxyConfigFile,
      /** A deep copy of the config spillway was started with, to modify and pass to writeConfig. */
      proxyConfig: () => structuredClone(proxyConfig),
      /**
       * Replaces spillway's config file atomically (write + rename): an object is written as JSON,
       * a string as is (e.g. deliberately broken JSON). Does not reload by itself.
       */
      async writeConfig(config) {
        const text = typeof config === 'string' ? config : JSON.stringify(config, null, 2);
        const tmp = `${proxyConfigFile}.${process.pid}.tmp`;
        await writeFile(tmp, text);
        await rename(tmp, proxyConfigFile);
      },
      /** Sends SIGHUP to spillway (it re-reads its config file). */
      sighup: () => proxy.kill('SIGHUP'),
      /** One request to the admin port: { status, headers, text, json } (json undefined unless JSON). */
      async admin(method, target) {
        const res = await fetch(`http://127.0.0.1:${adminPort}${target}`, { method });
        const text = await res.text();
        let json;
        if ((res.headers.get('content-type') ?? '').includes('json')) json = JSON.parse(text);
        return { status: res.status, headers: res.headers, text, json };
      },
      /** spillway's access log so far (stdout): one JSON object per complete line. */
      accessLog: () =>
        proxy.output.stdout
          .split('\n')
          .slice(0, -1)
          .filter((line) => line.trim() !== '')
          .map((line) => JSON.parse(line)),
      /**
       * Waits (up to 3 s) for n access-log lines and returns them. The log line, like
       * requests_total, is written when a request's last byte has gone out, so the SDK may see
       * its answer a moment earlier.
       */
      async waitForAccessLog(n) {
        const until = Date.now() + 3000;
        while (this.accessLog().length < n) {
          if (Date.now() > until) {
            throw new Error(`access log has ${this.accessLog().length} lines, want ${n}:\n${proxy.output.stdout}`);
          }
          await new Promise((r) => setTimeout(r, 10));
        }
        return this.accessLog();
      },
      /** SIGTERM spillway, then the mock; resolves with spillway's { code, signal }. Idempotent. */
      stop() {
        stopped ??= (async () => {
          const proxyExit = await stopChild(proxy);
          await stopChild(mock);
          await rm(dir, { recursive: true, force: true });
          return proxyExit;
        })();
        return stopped;
      },
    };
  } catch (err) {
    for (const child of children) await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Case-insensitive header lookup in the mock's recorded `last_request.headers` object. */
export function recordedHeader(headers, name) {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (k.toLowerCase() === wanted) return v;
  }
  return undefined;
}

/** Drains an SDK chat stream: { chunks, text } with text the concatenated delta contents. */
export async function collectChatStream(stream) {
  const chunks = [];
  let text = '';
  for await (const chunk of stream) {
    chunks.push(chunk);
    const delta = chunk.choices?.[0]?.delta?.content;
    if (typeof delta === 'string') text += delta;
  }
  return { chunks, text };
}
