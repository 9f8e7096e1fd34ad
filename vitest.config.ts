import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // GPU tests compile their pipelines on first use; on a cold shader cache (CI) that takes a while.
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
