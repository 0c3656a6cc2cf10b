// The README's TypeScript example, verbatim (test/stack/docs.test.ts keeps the two equal), so CI type-checks it.
import { createClient, isClientError } from "edge-data-platform/client";

const client = createClient({ url: "http://127.0.0.1:8787", token: process.env.EDP_TOKEN });

const campaign = await client.campaigns.create.mutate({ name: "Spring launch", startsAt: "2027-03-01T09:00:00Z" });
const [leads, inbox] = await Promise.all([client.leads.list.query({ limit: 10 }), client.notifications.list.query({})]);
console.log(campaign.status, leads.items.length, inbox.unread); // the two queries went in one batched request

try { await client.campaigns.get.query({ id: crypto.randomUUID() }); }
catch (error) { if (isClientError(error, "NOT_FOUND")) console.log("no such campaign", error.data?.requestId); }
