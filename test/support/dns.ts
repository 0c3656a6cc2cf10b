// The local DNS-over-HTTPS endpoint (scripts/stack/dns-endpoint.ts): tests publish and withdraw records as a domain owner would.
import { env } from "cloudflare:workers";

interface PublishedRecord {
  host: string;
  type: "TXT" | "CNAME";
  value: string;
}

/** The endpoint's record control route, beside the resolver URL the Worker asks. */
const recordsUrl = () => new URL("/_local/records", env.DOH_RESOLVER_URL).href;

/** Sets a name's records of one type; `values: []` removes them. */
export async function setDnsRecords(name: string, type: "TXT" | "CNAME", values: string[]): Promise<void> {
  const response = await fetch(recordsUrl(), { method: "PUT", body: JSON.stringify({ name, type, values }) });
  if (!response.ok) throw new Error(`the DNS endpoint refused the records: ${response.status} ${await response.text()}`);
}

/** Publishes exactly what domains.add asked for. */
export async function publishDnsRecords(records: PublishedRecord[]): Promise<void> {
  for (const record of records) await setDnsRecords(record.host, record.type, [record.value]);
}

/** Withdraws the records (the domain owner deleted them). */
export async function withdrawDnsRecords(records: PublishedRecord[]): Promise<void> {
  for (const record of records) await setDnsRecords(record.host, record.type, []);
}

/** A domain added, its records published and verified through the procedures: what a mailbox that sends needs. */
export async function verifiedDomain(
  client: {
    domains: {
      add: { mutate(input: { name: string }): Promise<{ id: string; name: string; dnsRecords: PublishedRecord[] }> };
      verify: { mutate(input: { id: string }): Promise<{ verificationStatus: string }> };
    };
  },
  name = `mail-${crypto.randomUUID().slice(0, 8)}.example.com`,
) {
  const domain = await client.domains.add.mutate({ name });
  await publishDnsRecords(domain.dnsRecords);
  const verified = await client.domains.verify.mutate({ id: domain.id });
  if (verified.verificationStatus !== "verified") throw new Error(`domain ${name} did not verify: ${JSON.stringify(verified)}`);
  return domain;
}
