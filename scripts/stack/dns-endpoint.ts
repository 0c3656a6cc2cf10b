// A local DNS-over-HTTPS endpoint (the JSON API of Cloudflare's and Google's resolvers) whose records tests and `npm run dev` set over HTTP.
import http from "node:http";
import { listen, readBody } from "./net-util";

type RecordType = "TXT" | "CNAME";
const typeCodes: Record<RecordType, number> = { TXT: 16, CNAME: 5 };

export interface DnsEndpoint {
  port: number;
  /** DOH_RESOLVER_URL for the Worker: GET `?name=&type=` answers `application/dns-json`. */
  resolverUrl: string;
  /** PUT `{ name, type, values }` sets a name's records of one type (`values: []` removes them); GET lists all. */
  recordsUrl: string;
  close(): Promise<void>;
}

const key = (name: string, type: string) => `${name.toLowerCase().replace(/\.$/, "")}|${type.toUpperCase()}`;
/** TXT data as resolvers show it: quoted, in strings of at most 255 characters. */
const txt = (value: string) => (value.match(/.{1,255}/g) ?? [""]).map((chunk) => `"${chunk.replace(/["\\]/g, "\\$&")}"`).join(" ");

export async function startDnsEndpoint(options: { port?: number; host?: string } = {}): Promise<DnsEndpoint> {
  const host = options.host ?? "127.0.0.1";
  const records = new Map<string, string[]>();
  const send = (res: http.ServerResponse, status: number, body: unknown, type = "application/json") => {
    res.writeHead(status, { "content-type": type });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", `http://${host}`);
      const body = await readBody(req);
      if (req.method === "GET" && url.pathname === "/dns-query") {
        const name = url.searchParams.get("name") ?? "";
        const type = (url.searchParams.get("type") ?? "").toUpperCase() as RecordType;
        if (!name || !(type in typeCodes)) return send(res, 400, { error: "name and type (TXT or CNAME) are required" });
        const values = records.get(key(name, type)) ?? [];
        const known = Object.keys(typeCodes).some((t) => (records.get(key(name, t))?.length ?? 0) > 0);
        const question = [{ name, type: typeCodes[type] }];
        const answer = values.map((value) => ({ name, type: typeCodes[type], TTL: 60, data: type === "TXT" ? txt(value) : `${value.replace(/\.$/, "")}.` }));
        // NXDOMAIN when nothing at all is published at the name, as a real resolver answers for a name that does not exist.
        return send(res, 200, { Status: known ? 0 : 3, TC: false, RD: true, RA: true, AD: false, CD: false, Question: question, ...(answer.length ? { Answer: answer } : {}) }, "application/dns-json");
      }
      if (url.pathname === "/_local/records") {
        if (req.method === "PUT" || req.method === "POST") {
          const change = JSON.parse(body) as { name?: unknown; type?: unknown; values?: unknown };
          const type = String(change.type ?? "").toUpperCase();
          if (typeof change.name !== "string" || !(type in typeCodes) || !Array.isArray(change.values) || !change.values.every((v) => typeof v === "string")) {
            return send(res, 400, { error: "expected { name, type: TXT | CNAME, values: string[] }" });
          }
          if (change.values.length === 0) records.delete(key(change.name, type));
          else records.set(key(change.name, type), change.values as string[]);
          return send(res, 200, { ok: true });
        }
        if (req.method === "GET") return send(res, 200, Object.fromEntries(records));
      }
      send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    } catch (error) {
      send(res, 400, { error: error instanceof Error ? error.message : String(error) });
    }
  });
  const port = await listen(server, host, options.port ?? 0);
  const base = `http://${host}:${port}`;
  return {
    port,
    resolverUrl: `${base}/dns-query`,
    recordsUrl: `${base}/_local/records`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
