// A Node script against a running Worker: EDP_URL (default http://127.0.0.1:8787) and EDP_TOKEN (`npm run token`).
// It creates a campaign and a lead, reads both back in one batched request, and shows a typed error code.
import { createClient, isClientError, type RouterInputs } from "edge-data-platform/client";

const token = process.env.EDP_TOKEN;
if (!token) throw new Error("set EDP_TOKEN (npm run token prints one for the demo admin)");
const client = createClient({ url: process.env.EDP_URL ?? "http://127.0.0.1:8787", token });

const me = await client.users.me.query();
console.log(`signed in as ${me.email} (${me.role}) in tenant ${me.tenantId}`);

const settings: RouterInputs["campaigns"]["create"] = {
  name: `Example ${new Date().toISOString()}`,
  timeZone: "Europe/Paris",
  startsAt: new Date(Date.now() + 86_400_000).toISOString(),
};
const campaign = await client.campaigns.create.mutate(settings);
const lead = await client.leads.create.mutate({ email: `ada+${Date.now()}@example.com`, firstName: "Ada" });

// Called in the same tick, these share one HTTP request (httpBatchLink, up to maxItems calls).
const [again, unread] = await Promise.all([client.campaigns.get.query({ id: campaign.id }), client.notifications.unreadCount.query()]);
console.log(`campaign ${again.name}: ${again.status}, starts ${again.startsAt}; lead ${lead.email}; ${unread.unread} unread notifications`);

try {
  await client.campaigns.get.query({ id: crypto.randomUUID() });
  throw new Error("expected NOT_FOUND");
} catch (error) {
  if (!isClientError(error, "NOT_FOUND")) throw error;
  console.log(`another id: ${error.data?.code} (HTTP ${error.data?.httpStatus}, request ${error.data?.requestId})`);
}
console.log("flow ok");
