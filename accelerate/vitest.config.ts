import { defineConfig } from "vitest/config";

// The bundle check: exported bundles trained by transformers + PEFT + Accelerate on one CPU
// process against pefc's own runs. Not part of `npm test`: it needs the Python environment that
// accelerate/setup.sh makes, and minutes of CPU.
export default defineConfig({
  test: {
    include: ["accelerate/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // One case at a time: each runs two trainings, and the machine may have two cores.
    fileParallelism: false,
  },
});
