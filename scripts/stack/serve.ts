// Runs the local stack as its own process and prints one READY line of JSON, for the test harness.
import { parseArgs } from "node:util";
import { startStack } from "./index";

const { values } = parseArgs({
  options: {
    purpose: { type: "string", default: "test" },
    "jwt-secret": { type: "string" },
  },
});
const purpose = values.purpose === "dev" ? "dev" : "test";
const jwtSecret = values["jwt-secret"] ?? process.env.JWT_SECRET;
if (!jwtSecret) {
  console.error("serve: --jwt-secret (or JWT_SECRET) is required");
  process.exit(2);
}

const stack = await startStack({ purpose, jwtSecret });
const info = {
  description: stack.describe(),
  workerVars: stack.workerVars,
  neonControlUrl: `http://127.0.0.1:${stack.neon.port}`,
  upstashControlUrl: stack.upstash.url,
  providersControlUrl: stack.providers.controlUrl,
  telemetryControlUrl: stack.telemetry.controlUrl,
  telemetryTracesUrl: stack.telemetry.tracesUrl,
  pushServiceUrl: stack.providers.pushServiceUrl,
  ownerUrls: stack.databases.ownerUrls,
};
process.stdout.write(`READY ${JSON.stringify(info)}\n`);

let closing = false;
const close = async () => {
  if (closing) return;
  closing = true;
  await stack.close();
  process.exit(0);
};
process.on("SIGTERM", () => void close());
process.on("SIGINT", () => void close());
// The parent holds our stdin open; when it goes away without a signal, so do we.
process.stdin.on("end", () => void close());
process.stdin.resume();
