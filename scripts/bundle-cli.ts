/**
 * Bundles the command line into one file, dist/bundle/pefc.js, which bin/pefc.js runs. Node takes
 * about 0.4 s to load pefc's few hundred compiled modules and chevrotain's lodash-es, file by file,
 * and every `pefc` command pays it (twice for `run` and `chat`, whose child process filters
 * Dawn's stderr); the bundle loads in about a tenth of a second. The library (dist/index.js) stays
 * unbundled. Packages with native or WebAssembly parts, and the CommonJS ones, stay outside and
 * load from node_modules as usual. dist/bundle sits two levels below the package root, as every
 * compiled module does, so the paths it resolves from its own URL (the export-run templates, the
 * IR schema) are the same.
 *
 *   npx tsx scripts/bundle-cli.ts      after tsc -p tsconfig.build.json (npm run build does both)
 */
import { build } from "esbuild";

const EXTERNAL = ["webgpu", "@sctg/sentencepiece-js", "@huggingface/tokenizers", "yauzl", "pickleparser", "ajv"];

await build({
  entryPoints: ["dist/cli/main-bin.js"],
  outfile: "dist/bundle/pefc.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: EXTERNAL,
  logLevel: "warning",
});
