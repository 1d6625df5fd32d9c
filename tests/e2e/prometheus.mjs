// A small parser for the Prometheus text exposition format (version 0.0.4), enough to read
// spillway's GET /metrics in the e2e tests: samples with labels, plus # TYPE lines.

function unescapeLabel(value) {
  return value.replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
}

function parseLabels(text) {
  const labels = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;
  let m;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    labels[m[1]] = unescapeLabel(m[2]);
  }
  if (re.lastIndex !== text.length && text.slice(re.lastIndex).trim() !== '') {
    throw new Error(`cannot parse labels: {${text}}`);
  }
  return labels;
}

function parseValue(text) {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`not a sample value: ${text}`);
  return n;
}

/**
 * Parses exposition text into { samples: [{ name, labels, value }], types: { family: type } }.
 * Throws on a line it does not understand, so malformed output fails the test.
 */
export function parsePrometheus(text) {
  const samples = [];
  const types = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = line.match(/^#\s+TYPE\s+(\S+)\s+(\S+)$/);
      if (m) types[m[1]] = m[2];
      continue;
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/);
    if (!m) throw new Error(`cannot parse metrics line: ${raw}`);
    samples.push({ name: m[1], labels: m[2] ? parseLabels(m[2]) : {}, value: parseValue(m[3]) });
  }
  return { samples, types };
}

function labelsMatch(sample, want) {
  for (const [k, v] of Object.entries(want)) if (sample.labels[k] !== v) return false;
  return true;
}

/** Helpers over one parsed scrape. */
export class Metrics {
  constructor(text) {
    this.text = text;
    const { samples, types } = parsePrometheus(text);
    this.samples = samples;
    this.types = types;
  }

  /** Every sample of `name` whose labels include `labels`. */
  all(name, labels = {}) {
    return this.samples.filter((s) => s.name === name && labelsMatch(s, labels));
  }

  /**
   * The value of the one series of `name` with exactly `labels` (every label given, no others).
   * Undefined when there is no such series; throws if there are several.
   */
  get(name, labels = {}) {
    const found = this.samples.filter(
      (s) =>
        s.name === name &&
        Object.keys(s.labels).length === Object.keys(labels).length &&
        labelsMatch(s, labels),
    );
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} series`);
    return found[0]?.value;
  }

  /** Sum over every series of `name` whose labels include `labels` (0 when there is none). */
  sum(name, labels = {}) {
    return this.all(name, labels).reduce((acc, s) => acc + s.value, 0);
  }

  /** { 'label=value,...': value } of the non-zero series of `name`, for readable deepEqual. */
  nonZero(name, keyLabels) {
    const out = {};
    for (const s of this.all(name)) {
      if (s.value === 0) continue;
      out[keyLabels.map((k) => `${k}=${s.labels[k] ?? ''}`).join(',')] = s.value;
    }
    return out;
  }
}

/** GET /metrics on spillway's admin port, parsed. */
export async function scrape(adminOrigin) {
  const res = await fetch(`${adminOrigin}/metrics`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /metrics -> ${res.status}: ${text}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain')) throw new Error(`GET /metrics content-type ${type}`);
  return new Metrics(text);
}
