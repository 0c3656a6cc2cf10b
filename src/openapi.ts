// The OpenAPI 3.1 document of the API, generated from the routers' zod schemas (z.toJSONSchema), served at
// /openapi.json. It describes the tRPC wire format as it is (no separate REST layer): a query is
// `GET /trpc/<path>?input=<JSON>`, a mutation `POST /trpc/<path>` with a JSON body, a result is
// `{ "result": { "data": … } }` and an error `{ "error": { "message", "code", "data": { "code", … } } }`.
import type { AnyTRPCProcedure } from "@trpc/server";
import { z } from "zod";
import { errorCodes } from "./platform/errors";
import { adminProcedure, authedProcedure, operatorProcedure, publicProcedure } from "./platform/trpc";
import { appRouter } from "./root";

type Access = "public" | "member" | "admin" | "operator";
/** JSON objects of the document (openapi-types' 3.1 typings reject valid 3.1 documents, so the validator checks it instead). */
type Json = Record<string, unknown>;
type Schema = Json;

interface ProcedureDef {
  type: "query" | "mutation" | "subscription";
  inputs: unknown[];
  middlewares: unknown[];
}

/** Most specific first: a procedure built on `adminProcedure` starts with its middlewares, and so on. */
const builders: Array<[Access, { _def: { middlewares: unknown[] } }]> = [
  ["operator", operatorProcedure],
  ["admin", adminProcedure],
  ["member", authedProcedure],
  ["public", publicProcedure],
];

/** Who may call a procedure, read from the builder it was made with (the middlewares it starts with). */
export function accessOf(procedure: AnyTRPCProcedure): Access {
  const { middlewares } = procedure._def as unknown as ProcedureDef;
  for (const [access, builder] of builders) {
    const prefix = builder._def.middlewares;
    if (prefix.every((middleware, index) => middlewares[index] === middleware)) return access;
  }
  throw new Error("a procedure not built on the platform's procedure builders");
}

/** The JSON Schema of what a caller sends (defaults optional, transforms at their input side), 2020-12 as OpenAPI 3.1 uses. */
function inputSchema(inputs: unknown[]): Schema | null {
  const schemas = inputs.map((input) => {
    if (!(input instanceof z.ZodType)) throw new Error("every procedure input is a zod schema");
    const { $schema: _dialect, ...schema } = z.toJSONSchema(input, { io: "input", unrepresentable: "any" });
    return schema as Schema;
  });
  if (schemas.length === 0) return null;
  return schemas.length === 1 ? schemas[0]! : { allOf: schemas };
}

const errorSchema: Schema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["message", "code", "data"],
      properties: {
        message: { type: "string" },
        code: { type: "integer", description: "tRPC's JSON-RPC code; branch on data.code instead" },
        data: {
          type: "object",
          required: ["code", "httpStatus", "requestId", "path"],
          properties: {
            code: { type: "string", enum: Object.keys(errorCodes), description: "the stable machine code (docs/api.md: error codes)" },
            httpStatus: { type: "integer" },
            requestId: { type: ["string", "null"] },
            path: { type: ["string", "null"], description: "the procedure" },
            tier: { type: "string", enum: ["oltp", "content", "jobs", "notifications", "olap", "redis"] },
            details: { description: "structured detail, e.g. the fields that failed validation" },
          },
        },
      },
    },
  },
};

const plainErrorSchema: Schema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message", "requestId"],
      properties: { code: { type: "string", enum: Object.keys(errorCodes) }, message: { type: "string" }, requestId: { type: ["string", "null"] } },
    },
  },
};

const errorResponse = (description: string): Json => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

function procedureOperation(path: string, procedure: AnyTRPCProcedure): [string, Json] {
  const def = procedure._def as unknown as ProcedureDef;
  const access = accessOf(procedure);
  const input = inputSchema(def.inputs);
  const [tag] = path.split(".");
  const operation: Json = {
    operationId: path,
    tags: [tag!],
    summary: `${path} (${def.type})`,
    description:
      (def.type === "query"
        ? "A tRPC query: `GET` with the input as URL-encoded JSON in `?input=`."
        : "A tRPC mutation: `POST` with the input as the JSON body.") +
      (access === "public" ? " No token needed." : ` Needs a bearer token${access === "member" ? "" : ` with the ${access} role`}.`) +
      " Several calls can share one request: `/trpc/a,b?batch=1&input={\"0\":…,\"1\":…}` answers an array of results.",
    "x-trpc-type": def.type,
    "x-required-role": access,
    ...(access === "public" ? { security: [] } : {}),
    responses: {
      "200": {
        description: "The procedure's result",
        content: {
          "application/json": {
            schema: {
              type: "object",
              required: ["result"],
              properties: { result: { type: "object", required: ["data"], properties: { data: { description: "the procedure's output (typed in the TypeScript client)" } } } },
            },
          },
        },
      },
      "400": errorResponse("VALIDATION_FAILED, MALFORMED_JSON, BAD_REQUEST"),
      ...(access === "public" ? {} : { "401": errorResponse("AUTH_TOKEN_MISSING, AUTH_TOKEN_INVALID, AUTH_TOKEN_EXPIRED, AUTH_CLAIMS_INVALID") }),
      ...(access === "public" || access === "member" ? {} : { "403": errorResponse(`FORBIDDEN: the caller lacks the ${access} role`) }),
      default: errorResponse("Any other error code (docs/api.md: error codes)"),
    },
  };
  if (def.type === "query") {
    if (input) {
      operation.parameters = [
        { name: "input", in: "query", required: false, description: "the input, as JSON (URL-encoded)", content: { "application/json": { schema: input } } },
      ];
    }
    return [`/trpc/${path}`, { get: operation }];
  }
  if (input) operation.requestBody = { required: true, content: { "application/json": { schema: input } } };
  return [`/trpc/${path}`, { post: operation }];
}

/** The Worker's plain HTTP routes (src/app.ts and the tiers' route files). */
const plainRoutes: Record<string, Json> = {
  "/ping": { get: { operationId: "ping", tags: ["http"], summary: "Liveness: `pong`, touching no store", security: [], responses: { "200": { description: "pong", content: { "text/plain": { schema: { type: "string" } } } } } } },
  "/health": {
    get: {
      operationId: "health",
      tags: ["http"],
      summary: "Each tier's status and latency",
      security: [],
      responses: {
        "200": { description: "ok or degraded", content: { "application/json": { schema: { $ref: "#/components/schemas/Health" } } } },
        "503": { description: "every tier is down", content: { "application/json": { schema: { $ref: "#/components/schemas/Health" } } } },
      },
    },
  },
  "/openapi.json": { get: { operationId: "openapi", tags: ["http"], summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": {} } } } } },
  "/v1/notifications/unread-count": {
    get: {
      operationId: "unreadCountBadge",
      tags: ["http"],
      summary: "The browser's unread badge (same service as notifications.unreadCount)",
      responses: {
        "200": { description: "the caller's unread count", content: { "application/json": { schema: { type: "object", required: ["unread"], properties: { unread: { type: "integer" } } } } } },
        "401": { description: "no or bad token", content: { "application/json": { schema: { $ref: "#/components/schemas/PlainError" } } } },
      },
    },
  },
  "/v1/webhooks/{provider}": {
    post: {
      operationId: "providerWebhook",
      tags: ["inbound"],
      summary: "A provider's signed event batch (`standard`: Standard Webhooks; `sendgrid`: Signed Event Webhook), queued for recording",
      security: [],
      parameters: [{ name: "provider", in: "path", required: true, schema: { type: "string", enum: ["standard", "sendgrid"] } }],
      requestBody: { required: true, content: { "application/json": { schema: {} } } },
      responses: {
        "200": { description: "queued", content: { "application/json": { schema: { type: "object", required: ["accepted", "ignored"], properties: { accepted: { type: "integer" }, ignored: { type: "integer" } } } } } },
        "401": { description: "WEBHOOK_SIGNATURE_INVALID: bad signature or stale timestamp; nothing queued", content: { "application/json": { schema: { $ref: "#/components/schemas/PlainError" } } } },
        "404": { description: "provider not configured", content: { "application/json": { schema: { $ref: "#/components/schemas/PlainError" } } } },
        "503": { description: "the queue refused the facts: send again", content: { "application/json": { schema: { $ref: "#/components/schemas/PlainError" } } } },
      },
    },
  },
  "/t/o/{file}": {
    get: {
      operationId: "trackOpen",
      tags: ["inbound"],
      summary: "Open-tracking pixel (`<token>.gif`, put in a tracked campaign's email at send time)",
      security: [],
      parameters: [{ name: "file", in: "path", required: true, schema: { type: "string" } }],
      responses: {
        "200": { description: "a 1×1 GIF", content: { "image/gif": {} } },
        "403": { description: "LINK_INVALID", content: { "application/json": { schema: { $ref: "#/components/schemas/PlainError" } } } },
      },
    },
  },
  "/t/c/{token}": {
    get: {
      operationId: "trackClick",
      tags: ["inbound"],
      summary: "Click tracking: redirects to the URL signed into the token, and nowhere else",
      security: [],
      parameters: [{ name: "token", in: "path", required: true, schema: { type: "string" } }],
      responses: {
        "302": { description: "to the link that was in the email" },
        "403": { description: "LINK_INVALID", content: { "application/json": { schema: { $ref: "#/components/schemas/PlainError" } } } },
      },
    },
  },
};

let cached: Json | undefined;

/** The document (built once per isolate), with `serverUrl` as its server. */
export function openApiDocument(serverUrl = "/"): Json {
  cached ??= {
    openapi: "3.1.0",
    info: {
      title: "Edge data platform",
      version: "1",
      description:
        "tRPC over HTTP. Queries: `GET /trpc/<procedure>?input=<URL-encoded JSON>`; mutations: `POST /trpc/<procedure>` with a JSON body " +
        "and `Content-Type: application/json`. Success: `{ \"result\": { \"data\": … } }`. Failure: `{ \"error\": { \"message\", \"code\", \"data\": { \"code\", \"httpStatus\", \"requestId\", … } } }` " +
        "with the HTTP status of data.httpStatus. Authenticate with `Authorization: Bearer <JWT or edp_ API key>`. TypeScript apps: the `edge-data-platform/client` package.",
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    paths: {
      ...plainRoutes,
      ...Object.fromEntries(Object.entries(appRouter._def.procedures as unknown as Record<string, AnyTRPCProcedure>).map(([path, procedure]) => procedureOperation(path, procedure))),
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "A JWT (`sub`, `tenant_id`, `role`, `exp`) or an `edp_…` API key" } },
      schemas: {
        Error: errorSchema,
        PlainError: plainErrorSchema,
        Health: {
          type: "object",
          required: ["status", "checkedAt", "tiers"],
          properties: {
            status: { type: "string", enum: ["ok", "degraded", "down"] },
            checkedAt: { type: "string", format: "date-time" },
            tiers: {
              type: "object",
              additionalProperties: {
                type: "object",
                required: ["status", "latencyMs"],
                properties: { status: { type: "string", enum: ["ok", "down"] }, latencyMs: { type: "number" }, error: { type: "string" } },
              },
            },
          },
        },
      },
    },
  };
  return { ...cached, servers: [{ url: serverUrl }] };
}

/** A reference page for development: Scalar, loaded from its CDN, reading /openapi.json. */
export const referencePage = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>Edge data platform API</title></head>
  <body>
    <script id="api-reference" data-url="/openapi.json"></script>
    <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
  </body>
</html>
`;
