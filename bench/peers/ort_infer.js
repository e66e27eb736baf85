#!/usr/bin/env node
// ONNX Runtime peer for bench/infer_bench.cpp: a long-lived process that loads one .onnx model
// and runs it on request, so `duet bench infer` can alternate its own timings with ONNX
// Runtime's on the same machine load (the same idea as torch_conv.py).
//
// Usage: node bench/peers/ort_infer.js MODEL.onnx THREADS
// Session: intra-op threads = THREADS, inter-op 1, all graph optimisations, sequential execution.
// First line out: "ready onnxruntime-node VERSION threads N input NAME output NAME", or one
// "error ..." line (for instance when `npm install --ignore-scripts` was not run in bench/peers).
// Then one request per line on stdin, one answer line on stdout:
//   input FILE N C H W  -> "ok"   FILE: N*C*H*W little-endian float32, the input from now on;
//                                 runs once to warm up (allocations, kernel selection)
//   run OUTFILE         -> "ok D0 D1 ..."  writes the first output as raw float32, its dims
//   time ITERS          -> "ok SECONDS_PER_CALL"  mean over ITERS awaited session.run calls
//   quit
// Any failure answers "error MESSAGE" (one line) and the process keeps serving.
'use strict';

const fs = require('fs');
const readline = require('readline');

function say(line) {
  process.stdout.write(line + '\n');
}

async function main() {
  const [modelPath, threadsArg] = process.argv.slice(2);
  if (!modelPath) {
    say('error usage: node ort_infer.js MODEL.onnx THREADS');
    return 2;
  }
  const threads = Math.max(1, parseInt(threadsArg || '1', 10) || 1);
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    const first = String(e.message).split('\n')[0];
    say(`error onnxruntime-node cannot be loaded (${first}); ` +
        'run `cd bench/peers && npm install --ignore-scripts`');
    return 3;
  }
  let session;
  try {
    session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
  } catch (e) {
    say(`error ${modelPath}: ${String(e.message).split('\n')[0]}`);
    return 1;
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  const version = (ort.env && ort.env.versions && ort.env.versions.node) || 'unknown';
  say(`ready onnxruntime-node ${version} threads ${threads} input ${inputName} ` +
      `output ${outputName}`);

  let feeds = null;
  const rl = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
  for await (const line of rl) {
    const parts = line.trim().split(/\s+/);
    if (parts[0] === '') continue;
    if (parts[0] === 'quit') break;
    try {
      if (parts[0] === 'input' && parts.length === 6) {
        const dims = parts.slice(2).map((s) => parseInt(s, 10));
        if (dims.some((d) => !(d > 0))) throw new Error(`bad dims ${parts.slice(2).join(' ')}`);
        const bytes = fs.readFileSync(parts[1]);
        const count = dims.reduce((a, b) => a * b, 1);
        if (bytes.length !== 4 * count)
          throw new Error(`${parts[1]}: ${bytes.length} bytes, expected ${4 * count}`);
        // Copy into a fresh, aligned buffer: a Buffer may sit at any offset of a shared pool.
        const data = new Float32Array(count);
        new Uint8Array(data.buffer).set(bytes);
        feeds = {[inputName]: new ort.Tensor('float32', data, dims)};
        await session.run(feeds);
        say('ok');
      } else if (parts[0] === 'run' && parts.length === 2) {
        if (!feeds) throw new Error('no input yet (send "input FILE N C H W" first)');
        const out = (await session.run(feeds))[outputName];
        const d = out.data;
        fs.writeFileSync(parts[1], Buffer.from(d.buffer, d.byteOffset, d.byteLength));
        say(`ok ${out.dims.join(' ')}`);
      } else if (parts[0] === 'time' && parts.length === 2) {
        if (!feeds) throw new Error('no input yet (send "input FILE N C H W" first)');
        const iters = Math.max(1, parseInt(parts[1], 10) || 1);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < iters; ++i) await session.run(feeds);
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9 / iters;
        say(`ok ${seconds.toFixed(9)}`);
      } else {
        say(`error bad request: ${line.trim()}`);
      }
    } catch (e) {
      say(`error ${String(e.message).split('\n')[0]}`);
    }
  }
  return 0;
}

main().then((code) => {
  process.exitCode = code;
});
