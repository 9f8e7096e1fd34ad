// `npm run bench`: achieved GFLOP/s of each matmul variant on this device, median of warm runs,
// each run one submit of many dispatches (GPU time from timestamps when the adapter has them),
// after the device's FMA ceiling (alu.ts) and what a value read in a loop costs by where it is
// read from (memops.ts).
// `npm run bench -- --sweep` also tries register-block shapes; `--quick` runs fewer shapes;
// `--kernels` then times whole op lowerings (attention, linear_fused; see kernels.ts), and
// `--kernels-only` skips the matmul table. `--load` instead measures loading a ChatGLM2 checkpoint
// in its published torch format (load.ts; no device needed). `--train` runs only the training
// steps against the PyTorch peer (bench/peer.ts; `--quick` leaves out GPT-2 at 4 x 512, `--threads
// N` sets the peer's threads, default 2); `--train --profile` prints instead a per-kernel time table of
// the warm steps (profile.ts).

import {
  MATMUL_VARIANTS,
  matmulKernel,
  type MatmulProblem,
  type MatmulTuning,
  type MatmulVariant,
} from "../src/codegen/wgsl/index.js";
import { chooseMatmulVariant, median, openDevice, type Device } from "../src/runtime/device/index.js";
import { aluCeiling } from "./alu.js";
import { memopCosts } from "./memops.js";
import { benchTraining, benchTrainVsTorch } from "./train.js";
import { benchKernels } from "./kernels.js";
import { benchProfile } from "./profile.js";
import { benchLoad } from "./load.js";

interface Case {
  name: string;
  p: MatmulProblem;
}

const argv = process.argv.slice(2);
const args = new Set(argv);
const threadsAt = argv.indexOf("--threads");
const peerThreads = threadsAt >= 0 ? Number(argv[threadsAt + 1]) : 2;
const RUNS = 5;

const CASES: Case[] = [
  { name: "linear fwd 512x768x768 w[N,K]", p: { M: 512, N: 768, K: 768, aLayout: "mk", bLayout: "nk" } },
  { name: "linear fwd 512x768x768 w[K,N]", p: { M: 512, N: 768, K: 768, aLayout: "mk", bLayout: "kn" } },
  { name: "mlp up 512x3072x768 w[N,K]", p: { M: 512, N: 3072, K: 768, aLayout: "mk", bLayout: "nk" } },
  { name: "dX 512x768x3072 w[N,K]", p: { M: 512, N: 768, K: 3072, aLayout: "mk", bLayout: "kn" } },
  { name: "dW 768x768 over 512 rows", p: { M: 768, N: 768, K: 512, aLayout: "km", bLayout: "kn", accumulate: true } },
];

async function gflops(dev: Device, p: MatmulProblem, v: MatmulVariant, tuning?: MatmulTuning): Promise<{ g: number; method: string }> {
  const spec = matmulKernel(p, v, dev.caps, tuning);
  await dev.prepare(spec);
  const fill = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
  const bufs = {
    a: dev.bufferFrom(fill(p.M * p.K)),
    b: dev.bufferFrom(fill(p.N * p.K)),
    c: dev.bufferFrom(new Float32Array(p.M * p.N)),
  };
  // About 0.1 s of work per run on llvmpipe, a few dispatches at least.
  const reps = Math.max(2, Math.min(64, Math.round(1.2e9 / spec.flops)));
  const record = (rec: { dispatch: (s: typeof spec, b: typeof bufs) => void }) => {
    for (let i = 0; i < reps; i++) rec.dispatch(spec, bufs);
  };
  await dev.time(record, 1); // JIT and caches
  const t = await dev.time(record, RUNS);
  for (const b of Object.values(bufs)) b.destroy();
  return { g: (spec.flops * reps) / (median(t.ms) * 1e6), method: t.method };
}

if (args.has("--load")) {
  await benchLoad(process.argv.slice(2));
  process.exit(0);
}

const dev = await openDevice();
const a = dev.info.adapter;
console.log(`device: ${a.description} (${a.vendor}/${a.architecture}${a.isCpu ? ", CPU adapter" : ""})`);
console.log(`features: ${dev.info.features.join(", ")}`);
console.log(`date: ${new Date().toISOString()}`);
if (args.has("--train") && args.has("--profile")) {
  await benchProfile(dev, (l) => console.log(l), { quick: args.has("--quick") });
  dev.destroy();
  process.exit(0);
}
if (args.has("--train")) {
  await benchTrainVsTorch(dev, (l) => console.log(l), { quick: args.has("--quick"), threads: peerThreads });
  dev.destroy();
  process.exit(0);
}
const choice = await chooseMatmulVariant(dev);
const measured = Object.entries(choice.gflops);
console.log(`chosen matmul variant: ${choice.variant} (${choice.source === "cpu" ? "CPU adapter, not measured" : `${choice.source}; ${measured.map(([k, g]) => `${k} ${g.toFixed(2)}`).join(", ")} GFLOP/s at ${choice.shape}`})`);
const cases = args.has("--kernels-only") ? [] : args.has("--quick") ? CASES.slice(0, 2) : CASES;
if (cases.length) {
  console.log("");
  console.log(`ALU ceiling (independent FMAs in registers): ${(await aluCeiling(dev)).toFixed(2)} GFLOP/s`);
  console.log("one value read in a loop, ns per invocation, over the loop alone:");
  for (const m of await memopCosts(dev)) console.log(`  ${m.name.padEnd(42)} ${m.ns.toFixed(3)}`);
  console.log("GFLOP/s, median of", RUNS, "warm runs");
}
for (const c of cases) {
  const row: string[] = [];
  let method = "";
  for (const v of MATMUL_VARIANTS) {
    const r = await gflops(dev, c.p, v);
    method = r.method;
    row.push(`${v} ${r.g.toFixed(2)}`);
  }
  console.log(`  ${c.name.padEnd(32)} ${row.join("   ")}   (${method})`);
}

if (args.has("--sweep")) {
  console.log("\nregister tuning sweep at 512x768x768 (tm x tn, workgroup):");
  for (const bLayout of ["nk", "kn"] as const)
    for (const [tm, tn, wg] of [
      [8, 4, 64],
      [4, 8, 64],
      [8, 4, 16],
      [4, 8, 16],
      [8, 8, 32],
      [4, 4, 64],
    ] as const) {
      const r = await gflops(dev, { M: 512, N: 768, K: 768, aLayout: "mk", bLayout }, "register", { register: { tm, tn, wg } });
      console.log(`  ${bLayout} ${tm}x${tn} wg${wg}: ${r.g.toFixed(2)}`);
    }
}
if (args.has("--kernels") || args.has("--kernels-only")) await benchKernels(dev, choice.variant, args.has("--quick"));
if (!args.has("--kernels-only") && !args.has("--matmul-only")) await benchTraining(dev, (l) => console.log(l));
dev.destroy();
