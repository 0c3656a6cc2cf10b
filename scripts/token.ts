// `npm run token -- [--role admin|member|operator] [--tenant <uuid>] [--sub <uuid>] [--ttl 12h]`: mints a dev bearer token.
import { parseArgs } from "node:util";
import { z } from "zod";
import { demo, mintDevToken } from "./dev-config";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "admin" },
    tenant: { type: "string", default: demo.tenant.id },
    sub: { type: "string" },
    ttl: { type: "string", default: "12h" },
  },
});

const args = z
  .object({
    role: z.enum(["member", "admin", "operator"]),
    tenant: z.uuid(),
    sub: z.uuid().optional(),
    ttl: z.string().regex(/^\d+[smhdw]$/, "like 30m, 12h or 7d"),
  })
  .safeParse(values);
if (!args.success) {
  for (const issue of args.error.issues) console.error(`--${issue.path.join(".")}: ${issue.message}`);
  process.exit(2);
}
const { role, tenant, ttl } = args.data;
const sub = args.data.sub ?? (role === "member" ? demo.member.id : demo.admin.id);
console.log(await mintDevToken({ sub, tenant_id: tenant, role }, ttl));
