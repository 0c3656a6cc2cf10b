// The security suite's view of the API: every procedure of the app router (found from the router, never listed), the
// fields its input schema declares (ids, dates), and the raw tRPC wire format to send attacks at them.
import { expect } from "vitest";
import type { z } from "zod";
import { errorCodes } from "../../../src/platform/errors";
import { appRouter } from "../../../src/root";
import { request } from "../../support/worker";

export type ProcedureType = "query" | "mutation";

interface ProcedureDef {
  _def: { type: ProcedureType; inputs: z.ZodType[] };
}

export const procedures = Object.entries(appRouter._def.procedures as unknown as Record<string, ProcedureDef>)
  .map(([path, procedure]) => ({ path, type: procedure._def.type, inputs: procedure._def.inputs }))
  .sort((a, b) => a.path.localeCompare(b.path));

export type FieldKind = "uuid" | "date";

export interface Field {
  /** Object keys from the input's root; array elements are written as "0". */
  path: string[];
  kind: FieldKind;
  /** The schema node itself, and the pipe around it when there is one (a normalising transform). */
  node: z.ZodType;
  pipe: z.ZodType | null;
}

type Def = { type: string; format?: string; [key: string]: unknown };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Walks a zod 4 schema tree and returns its uuid and date fields, each with the path a caller's JSON would use. */
export function fieldsOf(schema: z.ZodType): Field[] {
  const found: Field[] = [];
  const visit = (node: z.ZodType, path: string[], pipe: z.ZodType | null) => {
    // Router schemas are trees (one node may be shared by several fields, so it is visited once per field).
    if (path.length > 32) return;
    const def = defOf(node);
    switch (def.type) {
      case "string":
        if (def.format === "uuid") found.push({ path, kind: "uuid", node, pipe });
        if (def.format === "datetime" || def.format === "date") found.push({ path, kind: "date", node, pipe });
        return;
      case "date":
        found.push({ path, kind: "date", node, pipe });
        return;
      case "object":
        for (const [key, child] of Object.entries(def.shape as Record<string, z.ZodType>)) visit(child, [...path, key], null);
        return;
      case "array":
        visit(def.element as z.ZodType, [...path, "0"], null);
        return;
      case "pipe":
        visit(def.in as z.ZodType, path, node);
        return;
      case "union":
        for (const option of def.options as z.ZodType[]) visit(option, path, null);
        return;
      case "intersection":
        visit(def.left as z.ZodType, path, null);
        visit(def.right as z.ZodType, path, null);
        return;
      case "record":
        visit(def.valueType as z.ZodType, [...path, "key"], null);
        return;
      case "optional":
      case "nullable":
      case "default":
      case "prefault":
      case "readonly":
      case "nonoptional":
      case "catch":
        visit(def.innerType as z.ZodType, path, pipe);
        return;
      default:
        return;
    }
  };
  visit(schema, [], null);
  return found;
}

/** Every procedure with the fields of each kind its input declares. */
export const proceduresWithFields = (kind: FieldKind) =>
  procedures
    .map((p) => ({ ...p, fields: p.inputs.flatMap((input) => fieldsOf(input)).filter((f) => f.kind === kind) }))
    .filter((p) => p.fields.length > 0);

/** `{ a: { b: value } }` for the path ["a", "b"]; "0" makes an array. */
export function inputWith(path: string[], value: unknown): unknown {
  return path.reduceRight<unknown>((inner, key) => (key === "0" ? [inner] : { [key]: inner }), value);
}

export interface Outcome {
  status: number;
  text: string;
  headers: Headers;
}

/** The tRPC HTTP wire format: a query's input in the URL, a mutation's in a JSON body. */
export async function send(path: string, type: ProcedureType, input: unknown, token?: string, init: RequestInit = {}): Promise<Outcome> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const response =
    type === "query"
      ? await request(`/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}`, { headers, ...init })
      : await request(`/trpc/${path}`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: input === undefined ? undefined : JSON.stringify(input),
          ...init,
        });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

export interface ErrorData {
  code?: string;
  httpStatus?: number;
  details?: Array<{ path?: string; message?: string }> | Record<string, unknown>;
}

/** The error data of a tRPC answer (the first envelope of a batch). */
export function errorData(outcome: Outcome): ErrorData | undefined {
  const parsed = JSON.parse(outcome.text) as { error?: { data?: ErrorData } } | Array<{ error?: { data?: ErrorData } }>;
  return (Array.isArray(parsed) ? parsed[0] : parsed)?.error?.data;
}

const documentedStatus = new Map(Object.entries(errorCodes).map(([code, { status }]) => [code, status]));

/** No 5xx, and every refusal carries a documented code with its documented status. */
export function expectClientOutcome(where: string, outcome: Outcome): void {
  const label = `${where} → ${outcome.status} ${outcome.text.slice(0, 300)}`;
  expect(outcome.status, label).toBeLessThan(500);
  if (outcome.status >= 400) {
    const code = errorData(outcome)?.code;
    expect(documentedStatus.get(code ?? "") ?? null, `${label}: undocumented code ${code}`).toBe(outcome.status);
  }
}
