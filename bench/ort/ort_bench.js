#!/usr/bin/env node
// The peer side of scripts/bench.sh: ONNX Runtime (onnxruntime-node, CPU execution provider)
// timed the way bench/bench_infer.c times hotyolo (see docs/bench.md).
//
//   node ort_bench.js MODEL.onnx [--threads N] [--runs R] [--warmup W] [--imgsz S]
//                    [--input FILE] [--samples FILE] [--json]
//   node ort_bench.js MODEL.onnx --cold [--threads N] [--input FILE] [--out FILE]
//
// Session: intraOpNumThreads N, interOpNumThreads 1, graphOptimizationLevel 'all',
// executionMode 'sequential', executionProviders ['cpu']. Input (1, 3, S, S) float32 from
// --input (.npy '<f4' C order, or raw little-endian floats) or the same deterministic
// pseudo-random data bench_infer makes. Steady mode: W untimed warm-up runs (the first one's
// latency is reported as first_run_ms), then R timed session.run calls on that one input.
// Cold mode: require + session create + one run, then the result JSON is written and the
// process exits; the caller times the whole process (bench_spawn).
// onnxruntime-node is found through NODE_PATH (scripts/ort-setup.sh prints its folder).
'use strict';
const scriptStart = process.hrtime.bigint();
const bootMs = process.uptime() * 1e3; // node start -> this line
const fs = require('fs');

const ms = (a, b) => Number(b - a) / 1e6;

function parseArgs(argv) {
  const o = { threads: 0, runs: 30, warmup: 3, imgsz: 640, json: false, cold: false };
  const num = (k, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) usage(`${k} needs a non-negative integer, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--json') o.json = true;
    else if (a === '--cold') o.cold = true;
    else if (a === '--threads') o.threads = num(a, next());
    else if (a === '--runs') o.runs = num(a, next());
    else if (a === '--warmup') o.warmup = num(a, next());
    else if (a === '--imgsz') o.imgsz = num(a, next());
    else if (a === '--input') o.input = next();
    else if (a === '--samples') o.samples = next();
    else if (a === '--out') o.out = next();
    else if (a.startsWith('-') || o.model) usage(`unexpected argument '${a}'`);
    else o.model = a;
  }
  if (!o.model) usage('MODEL.onnx is required');
  if (o.runs < 1 || o.imgsz < 32 || o.imgsz % 32) usage('runs >= 1, imgsz a multiple of 32');
  if (o.threads === 0) o.threads = require('os').availableParallelism?.() ?? require('os').cpus().length;
  return o;
}

function usage(why) {
  process.stderr.write(
    `ort_bench: ${why}\n` +
      'usage: node ort_bench.js MODEL.onnx [--threads N] [--runs R] [--warmup W] [--imgsz S]\n' +
      '                         [--input FILE] [--samples FILE] [--json] [--cold [--out FILE]]\n'
  );
  process.exit(2);
}

// Same LCG as bench_infer.c: values in [0, 1), identical bit for bit.
function pseudoRandom(n) {
  const x = new Float32Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = ((s >>> 8) & 0xffff) / 65536;
  }
  return x;
}

// n float32 from a .npy ('<f4', C order) or a raw file of 4n bytes.
function readInput(path, n) {
  const b = fs.readFileSync(path);
  let off = 0;
  if (b.length >= 10 && b[0] === 0x93 && b.toString('latin1', 1, 6) === 'NUMPY') {
    const v1 = b[6] === 1;
    const hlen = v1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
    off = (v1 ? 10 : 12) + hlen;
    const hdr = b.toString('latin1', v1 ? 10 : 12, Math.min(off, b.length));
    if (!hdr.includes("'<f4'")) throw new Error(`${path}: .npy dtype is not '<f4' (float32)`);
    if (!hdr.includes("'fortran_order': False")) throw new Error(`${path}: .npy is Fortran-ordered`);
  }
  if (b.length - off !== n * 4)
    throw new Error(`${path}: wrong size (need ${n} float32 = (1, 3, S, S), data has ${b.length - off} bytes)`);
  if (require('os').endianness() !== 'LE') throw new Error('big-endian host: not supported');
  return new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + off + 4 * n)); // aligned copy
}

// median: mean of the middle two; pXX: nearest rank; stddev: sample (n-1). As bench_infer.c.
function stats(t) {
  const s = [...t].sort((a, b) => a - b);
  const n = s.length;
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(s.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (n - 1)) : 0;
  return {
    median_ms: (s[(n - 1) >> 1] + s[n >> 1]) / 2,
    p90_ms: s[Math.ceil(0.9 * n) - 1],
    p99_ms: s[Math.ceil(0.99 * n) - 1],
    min_ms: s[0],
    max_ms: s[n - 1],
    mean_ms: mean,
    stddev_ms: sd,
  };
}

function peakRssKb() {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

const r3 = (x) => (x == null ? null : Math.round(x * 1000) / 1000);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const t0 = process.hrtime.bigint();
  const ort = require('onnxruntime-node');
  const t1 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(o.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const t2 = process.hrtime.bigint();
  const n = 3 * o.imgsz * o.imgsz;
  const data = o.input ? readInput(o.input, n) : pseudoRandom(n);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, o.imgsz, o.imgsz]) };
  const t3 = process.hrtime.bigint();
  const base = {
    engine: 'onnxruntime-node',
    version: ort.env.versions?.node ?? null,
    model: o.model,
    threads: o.threads,
    imgsz: o.imgsz,
  };

  if (o.cold) {
    const out = await session.run(feeds);
    const t4 = process.hrtime.bigint();
    const y = out[session.outputNames[0]];
    // (1, 4 + nc, A): a summary so the result is used: anchors with a class score > 0.25
    const [, rows, anchors] = y.dims;
    let hits = 0;
    for (let a = 0; a < anchors; a++) {
      let best = 0;
      for (let c = 4; c < rows; c++) best = Math.max(best, y.data[c * anchors + a]);
      if (best > 0.25) hits++;
    }
    const res = {
      ...base,
      mode: 'cold',
      node_boot_ms: r3(bootMs), // node start -> first line of this script
      require_ms: r3(ms(t0, t1)),
      session_create_ms: r3(ms(t1, t2)),
      input_ms: r3(ms(t2, t3)),
      run_ms: r3(ms(t3, t4)),
      script_ms: r3(ms(scriptStart, t4)),
      uptime_ms: r3(process.uptime() * 1e3), // node start -> result
      output_dims: y.dims,
      anchors_over_0_25: hits,
      peak_rss_kb: peakRssKb(),
    };
    const text = JSON.stringify(res) + '\n';
    if (o.out) fs.writeFileSync(o.out, text);
    else process.stdout.write(text);
    return;
  }

  let first = null;
  for (let i = 0; i < o.warmup; i++) {
    const s = process.hrtime.bigint();
    await session.run(feeds);
    if (i === 0) first = ms(s, process.hrtime.bigint());
  }
  const t = new Array(o.runs);
  let last;
  for (let i = 0; i < o.runs; i++) {
    const s = process.hrtime.bigint();
    last = await session.run(feeds);
    t[i] = ms(s, process.hrtime.bigint());
  }
  if (first === null) first = t[0];
  if (o.samples) fs.appendFileSync(o.samples, t.map((v) => v.toFixed(4)).join('\n') + '\n');
  const st = stats(t);
  let sum = 0;
  for (const v of last[session.outputNames[0]].data) sum += v;
  const res = {
    ...base,
    mode: 'forward',
    runs: o.runs,
    warmup: o.warmup,
    require_ms: r3(ms(t0, t1)),
    session_create_ms: r3(ms(t1, t2)),
    first_run_ms: r3(first),
    ...Object.fromEntries(Object.entries(st).map(([k, v]) => [k, r3(v)])),
    rss_kb: Math.round(process.memoryUsage().rss / 1024),
    peak_rss_kb: peakRssKb(),
    output_sum: Number(sum.toPrecision(6)),
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(res) + '\n');
  } else {
    const f = (x) => x.toFixed(2);
    console.log(`model      ${o.model} (onnxruntime-node ${res.version}, CPU EP, ${o.threads} intra-op threads)`);
    console.log(`input      ${o.input ?? 'pseudo-random'}, ${o.imgsz}x${o.imgsz}, session.run`);
    console.log(`load       require ${f(res.require_ms)} ms, session create ${f(res.session_create_ms)} ms, first run ${f(first)} ms`);
    console.log(
      `latency    median ${f(st.median_ms)}  p90 ${f(st.p90_ms)}  p99 ${f(st.p99_ms)}  min ${f(st.min_ms)}  ` +
        `mean ${f(st.mean_ms)}  stddev ${f(st.stddev_ms)} ms  (${o.runs} runs)`
    );
    console.log(`RSS        ${(res.rss_kb / 1024).toFixed(1)} MiB now, peak ${((res.peak_rss_kb ?? 0) / 1024).toFixed(1)} MiB`);
  }
}

main().catch((e) => {
  process.stderr.write(`ort_bench: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
