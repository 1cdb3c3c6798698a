// The 32-bit heap harness's runner: MicroPython's WebAssembly port (32-bit words and
// pointers, as ESP32 and RP2) under Node.js.
//
//   node run.mjs PLAN.json
//
// PLAN: {"root": host folder copied to the interpreter's "/", "steps": [{"name", "code"}],
// "pystack": words (default 2048)}.
// Each step is its own runPython() call: that port collects garbage only when the outermost
// call from JavaScript returns, so after each step gc.collect() is called from here and the
// live heap (gc.mem_alloc()) and qstr pools (micropython.qstr_info()) are read without
// compiling anything. One JSON line per step on stdout: {step, alloc, qstr, out, error}.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let lines = [];
const mp = await loadMicroPython({
  heapsize: 1024 * 1024, // grows on demand: a cap proves nothing here, the live heap does
  pystack: plan.pystack || 2048, // words; its size moves the heap's place in memory
  stdout: (s) => lines.push(s),
  stderr: (s) => lines.push(s),
});

function copy(src, dst) {
  for (const name of fs.readdirSync(src)) {
    const from = path.join(src, name);
    const to = dst === "/" ? "/" + name : dst + "/" + name;
    if (fs.statSync(from).isDirectory()) {
      try { mp.FS.mkdir(to); } catch (e) { /* exists */ }
      copy(from, to);
    } else {
      mp.FS.writeFile(to, fs.readFileSync(from));
    }
  }
}
copy(plan.root, "/");

const gc = mp.pyimport("gc");
const upy = mp.pyimport("micropython");

function measure() {
  gc.collect();
  const alloc = gc.mem_alloc();
  lines = [];
  upy.qstr_info();
  const m = /n_pool=(\d+), n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)/.exec(
    lines.join("\n"));
  const qstr = m ? { pools: +m[1], qstrs: +m[2], data_bytes: +m[3], total_bytes: +m[4] } : null;
  return { alloc, qstr };
}

const first = measure();
console.log(JSON.stringify({ step: "(empty)", ...first, out: [], error: null }));
for (const step of plan.steps) {
  lines = [];
  let error = null;
  try {
    mp.runPython(step.code);
  } catch (e) {
    error = String((e && e.message) || e);
  }
  const out = lines;
  console.log(JSON.stringify({ step: step.name, ...measure(), out, error }));
  if (error) process.exit(1);
}
