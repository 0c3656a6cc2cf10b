// The local stand-in for the out-of-band component: an OTLP/HTTP (JSON) trace receiver, a PostHog-compatible capture
// endpoint (`/batch/`) and a JSON log drain. Each records what it received, flattened to be read easily; tests read
// and steer it through /_local routes (a sink can be made to fail or to hang), and `npm run dev` prints its URL so a
// developer can look at what the Worker sent.
import http from "node:http";
import { listen, readBody } from "./net-util";

type Sink = "traces" | "capture" | "logs";
type Mode = "ok" | "fail" | "hang";

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: number;
  status: number;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
  service: string | null;
}

export interface TelemetryEndpoint {
  port: number;
  /** OTEL_EXPORTER_URL for the Worker. */
  tracesUrl: string;
  /** PRODUCT_EVENTS_HOST for the Worker. */
  captureHost: string;
  /** LOG_SINK_URL for the Worker. */
  logsUrl: string;
  controlUrl: string;
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

const otlpValue = (v: OtlpValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? v.arrayValue?.values?.map(otlpValue) ?? null;
const attributesOf = (list: OtlpAttribute[] | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, otlpValue(a.value)]));

/** OTLP JSON ids are hex strings (the JSON encoding's rule); some exporters send base64: both become hex. */
const hexId = (id: unknown): string | null => {
  if (typeof id !== "string" || id === "") return null;
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, "base64").toString("hex");
};

function flattenTraces(body: unknown): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of (body as { resourceSpans?: unknown[] }).resourceSpans ?? []) {
    const resource = rs as { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: Array<{ spans?: unknown[] }> };
    const service = attributesOf(resource.resource?.attributes)["service.name"];
    for (const ss of resource.scopeSpans ?? []) {
      for (const raw of ss.spans ?? []) {
        const s = raw as {
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          kind?: number;
          status?: { code?: number };
          attributes?: OtlpAttribute[];
          links?: Array<{ traceId: string; spanId: string }>;
        };
        spans.push({
          traceId: hexId(s.traceId)!,
          spanId: hexId(s.spanId)!,
          parentSpanId: hexId(s.parentSpanId),
          name: s.name,
          kind: s.kind ?? 0,
          status: s.status?.code ?? 0,
          attributes: attributesOf(s.attributes),
          links: (s.links ?? []).map((l) => ({ traceId: hexId(l.traceId)!, spanId: hexId(l.spanId)! })),
          service: typeof service === "string" ? service : null,
        });
      }
    }
  }
  return spans;
}

export async function startTelemetryEndpoint(options: { port?: number; host?: string } = {}): Promise<TelemetryEndpoint> {
  const host = options.host ?? "127.0.0.1";
  const received: Record<Sink, unknown[]> = { traces: [], capture: [], logs: [] };
  const modes: Record<Sink, Mode> = { traces: "ok", capture: "ok", logs: "ok" };
  const hung = new Set<http.ServerResponse>();

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://local");
      const body = req.method === "POST" ? await readBody(req) : "";
      const sink: Sink | null = url.pathname === "/v1/traces" ? "traces" : url.pathname === "/batch/" ? "capture" : url.pathname === "/logs" ? "logs" : null;
      if (sink && req.method === "POST") {
        if (modes[sink] === "hang") {
          hung.add(res);
          res.on("close", () => hung.delete(res));
          return;
        }
        if (modes[sink] === "fail") return send(res, 503, { error: "down" });
        const parsed = JSON.parse(body) as unknown;
        if (sink === "traces") received.traces.push(...flattenTraces(parsed));
        else if (sink === "capture") {
          const batch = parsed as { api_key?: unknown; batch?: unknown[] };
          if (typeof batch.api_key !== "string" || !Array.isArray(batch.batch)) return send(res, 400, { error: "api_key and batch are required" });
          received.capture.push(...batch.batch.map((e) => ({ ...(e as object), api_key: batch.api_key })));
        } else {
          if (!Array.isArray(parsed)) return send(res, 400, { error: "a JSON array of records is expected" });
          received.logs.push(...parsed);
        }
        return send(res, 200, { status: 1 });
      }
      // Control: GET /_local/{traces|capture|logs} lists what arrived; POST /_local/mode {sink, mode}; DELETE /_local clears.
      const parts = url.pathname.split("/").filter(Boolean);
      if (parts[0] === "_local") {
        if (req.method === "GET" && parts[1] && parts[1] in received) return send(res, 200, received[parts[1] as Sink]);
        if (req.method === "POST" && parts[1] === "mode") {
          const { sink: which, mode } = JSON.parse(body) as { sink: Sink; mode: Mode };
          if (!(which in modes) || !["ok", "fail", "hang"].includes(mode)) return send(res, 400, { error: "sink and mode" });
          modes[which] = mode;
          if (mode !== "hang") for (const r of hung) r.destroy();
          return send(res, 200, modes);
        }
        if (req.method === "DELETE") {
          for (const key of Object.keys(received) as Sink[]) received[key] = [];
          return send(res, 200, {});
        }
      }
      send(res, 404, { error: "not found" });
    } catch (error) {
      send(res, 400, { error: String(error) });
    }
  });
  const port = await listen(server, host, options.port ?? 0);
  const base = `http://${host}:${port}`;
  return {
    port,
    tracesUrl: `${base}/v1/traces`,
    captureHost: base,
    logsUrl: `${base}/logs`,
    controlUrl: `${base}/_local`,
    async close() {
      for (const r of hung) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
