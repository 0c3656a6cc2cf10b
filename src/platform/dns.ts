// DNS lookups over DNS-over-HTTPS, JSON flavour (application/dns-json): the format Cloudflare's and Google's resolvers share.
import { AppError } from "./errors";

export type DnsRecordType = "TXT" | "CNAME";

/** `answers`: the record data as published (TXT strings joined, names without the trailing dot); empty for NXDOMAIN / no data. */
export interface DnsAnswer {
  answers: string[];
}

export interface DnsResolver {
  /** Throws SERVICE_UNAVAILABLE when the resolver cannot answer (unreachable, SERVFAIL, malformed reply): never "no record". */
  lookup(name: string, type: DnsRecordType): Promise<DnsAnswer>;
}

const typeCodes: Record<DnsRecordType, number> = { TXT: 16, CNAME: 5 };

/** A TXT answer's data is one or more quoted strings ("v=spf1 " "include:..."): one record is their concatenation. */
export function txtData(data: string): string {
  const chunks = [...data.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] ?? "").replace(/\\(.)/g, "$1"));
  return chunks.length > 0 ? chunks.join("") : data;
}

const unavailable = (message: string, cause?: unknown) => new AppError("SERVICE_UNAVAILABLE", message, { cause });

/** RFC 8484's JSON sibling: GET `?name=&type=` with `accept: application/dns-json`. */
export class DohResolver implements DnsResolver {
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
  ) {}

  async lookup(name: string, type: DnsRecordType): Promise<DnsAnswer> {
    const url = new URL(this.url);
    url.searchParams.set("name", name);
    url.searchParams.set("type", type);
    let response: Response;
    try {
      response = await fetch(url, { headers: { accept: "application/dns-json" }, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw unavailable("The DNS resolver is unreachable", error);
    }
    if (!response.ok) throw unavailable(`The DNS resolver answered ${response.status}`);
    const body = (await response.json().catch(() => null)) as { Status?: unknown; Answer?: unknown } | null;
    if (!body || typeof body.Status !== "number") throw unavailable("The DNS resolver sent a malformed answer");
    // 0 NOERROR, 3 NXDOMAIN: both definite; anything else (SERVFAIL, REFUSED) says nothing about the record.
    if (body.Status === 3) return { answers: [] };
    if (body.Status !== 0) throw unavailable(`The DNS resolver answered status ${body.Status}`);
    const answers = Array.isArray(body.Answer) ? (body.Answer as Array<{ type?: unknown; data?: unknown }>) : [];
    return {
      answers: answers
        .filter((a) => a.type === typeCodes[type] && typeof a.data === "string")
        .map((a) => (type === "TXT" ? txtData(a.data as string) : (a.data as string).replace(/\.$/, "").toLowerCase())),
    };
  }
}
