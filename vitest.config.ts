// Two projects: `stack` checks the local Neon/Upstash endpoints from Node; `worker` runs the app inside workerd.
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import type { StackInfo } from "./test/support/global-setup";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "stack",
          include: ["test/stack/**/*.test.ts"],
          environment: "node",
          testTimeout: 30_000,
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => {
            const stack = inject<StackInfo>("stack");
            return {
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  ...stack.workerVars,
                  TEST_NEON_CONTROL_URL: stack.neonControlUrl,
                  TEST_UPSTASH_CONTROL_URL: stack.upstashControlUrl,
                  TEST_PROVIDERS_CONTROL_URL: stack.providersControlUrl,
                  TEST_TELEMETRY_CONTROL_URL: stack.telemetryControlUrl,
                  TEST_OTEL_EXPORTER_URL: stack.telemetryTracesUrl,
                  TEST_PUSH_SERVICE_URL: stack.pushServiceUrl,
                },
              },
            };
          }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          // The content tests read the shared email corpus, which only Node can load from disk.
          globalSetup: ["test/support/global-setup.ts", "test/support/content-corpus-setup.ts"],
          // One local stack serves every file, and round-trip counters are per database,
          // so files run one after another to keep each file's counts its own.
          fileParallelism: false,
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
