// `npm run token -- [--role admin|member|operator] [--tenant <uuid>] [--sub <uuid>] [--ttl 12h]`: mints a dev bearer token.
import { parseArgs } from "node:util";
import { z } from "zod";
import { mintDevToken, readDemo } from "./dev-config";

const demo = readDemo();

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "admin" },
    tenant: { type: "string", ...(demo ? { default: demo.tenant.id } : {}) },
    sub: { type: "string" },
    ttl: { type: "string", default: "12h" },
  },
});

const args = z
  .object({
    role: z.enum(["member", "admin", "operator"]),
    tenant: z.uuid({ error: "a tenant uuid (run `npm run dev` once to seed the demo tenant)" }),
    sub: z.uuid().optional(),
    ttl: z.string().regex(/^\d+[smhdw]$/, "like 30m, 12h or 7d"),
  })
  .safeParse(values);
if (!args.success) {
  for (const issue of args.error.issues) console.error(`--${issue.path.join(".")}: ${issue.message}`);
  process.exit(2);
}
const { role, tenant, ttl } = args.data;
// An operator is platform staff, not a member; tenant members default to the demo tenant's (seeded by `npm run dev`).
const sub = args.data.sub ?? (role === "operator" ? crypto.randomUUID() : role === "member" ? demo?.member.id : demo?.admin.id);
if (!sub) {
  console.error("no demo tenant yet: run `npm run dev` once, or pass --tenant and --sub");
  process.exit(2);
}
console.log(await mintDevToken({ sub, tenant_id: tenant, role }, ttl));
