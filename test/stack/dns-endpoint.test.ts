// Checks the local DNS-over-HTTPS endpoint with the Worker's own resolver client (src/platform/dns.ts), as domain verification uses it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDnsEndpoint, type DnsEndpoint } from "../../scripts/stack/dns-endpoint";
import { DohResolver, txtData } from "../../src/platform/dns";
import { AppError } from "../../src/platform/errors";

describe("the local DNS-over-HTTPS endpoint", () => {
  let dns: DnsEndpoint;
  let resolver: DohResolver;
  const put = (name: string, type: string, values: string[]) =>
    fetch(dns.recordsUrl, { method: "PUT", body: JSON.stringify({ name, type, values }) });

  beforeAll(async () => {
    dns = await startDnsEndpoint();
    resolver = new DohResolver(dns.resolverUrl, 2000);
  });
  afterAll(() => dns.close());

  it("answers records set over HTTP in the JSON format Cloudflare and Google share", async () => {
    const long = `v=spf1 ${"include:_spf.example.net ".repeat(12)}include:_spf.edp.email ~all`;
    expect(long.length).toBeGreaterThan(255);
    expect((await put("Mail.Example.COM.", "TXT", ["google-site-verification=x", long])).status).toBe(200);
    expect((await put("sel._domainkey.mail.example.com", "CNAME", ["sel.dkim.edp.email"])).status).toBe(200);

    const raw = await fetch(`${dns.resolverUrl}?name=mail.example.com&type=TXT`, { headers: { accept: "application/dns-json" } });
    expect(raw.headers.get("content-type")).toBe("application/dns-json");
    const body = (await raw.json()) as { Status: number; Answer: Array<{ type: number; data: string }> };
    expect(body.Status).toBe(0);
    // A TXT record longer than 255 characters arrives as several quoted strings, as real resolvers show it.
    expect(body.Answer[1]!.data.startsWith('"v=spf1')).toBe(true);
    expect(body.Answer[1]!.data.split('" "').length).toBe(2);

    expect(await resolver.lookup("mail.example.com", "TXT")).toEqual({ answers: ["google-site-verification=x", long] });
    expect(await resolver.lookup("sel._domainkey.mail.example.com", "CNAME")).toEqual({ answers: ["sel.dkim.edp.email"] });
  });

  it("a name with nothing published is NXDOMAIN (no answers), and records can be withdrawn", async () => {
    await put("gone.example.com", "TXT", ["v=DMARC1; p=none"]);
    expect((await resolver.lookup("gone.example.com", "TXT")).answers).toEqual(["v=DMARC1; p=none"]);
    await put("gone.example.com", "TXT", []);
    const raw = (await (await fetch(`${dns.resolverUrl}?name=gone.example.com&type=TXT`)).json()) as { Status: number };
    expect(raw.Status).toBe(3);
    expect(await resolver.lookup("gone.example.com", "TXT")).toEqual({ answers: [] });
    expect((await put("x.example.com", "MX", ["a"])).status).toBe(400);
  });

  it("a resolver that is unreachable or answers an HTTP error is SERVICE_UNAVAILABLE, never 'no record'", async () => {
    const closed = new DohResolver("http://127.0.0.1:9/dns-query", 1000);
    await expect(closed.lookup("x.example.com", "TXT")).rejects.toSatisfy((e) => e instanceof AppError && e.code === "SERVICE_UNAVAILABLE");
    const bad = new DohResolver(`${dns.resolverUrl.replace("/dns-query", "/nowhere")}`, 1000);
    await expect(bad.lookup("x.example.com", "TXT")).rejects.toSatisfy((e) => e instanceof AppError && e.code === "SERVICE_UNAVAILABLE");
  });

  it("joins a TXT record's quoted strings and unescapes them", () => {
    expect(txtData('"v=spf1 " "include:a ~all"')).toBe("v=spf1 include:a ~all");
    expect(txtData('"say \\"hi\\""')).toBe('say "hi"');
  });
});
