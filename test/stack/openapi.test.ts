// /openapi.json is a valid OpenAPI 3.1 document (checked by @readme/openapi-parser) listing every procedure.
import { validate } from "@readme/openapi-parser";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/openapi";
import { appRouter } from "../../src/root";

type Operation = { operationId: string; "x-required-role"?: string; parameters?: unknown[]; requestBody?: unknown; security?: unknown[] };
type Paths = Record<string, Record<string, Operation>>;

const document = openApiDocument("https://edp.example");
const paths = document.paths as Paths;
const procedures = appRouter._def.procedures as unknown as Record<string, { _def: { type: string } }>;

describe("the OpenAPI document", () => {
  it("validates as OpenAPI 3.1", async () => {
    const result = await validate(structuredClone(document) as never);
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(result.valid).toBe(true);
    expect(document.openapi).toBe("3.1.0");
  });

  it("the validator catches a broken document (an operation without responses, a bad $ref)", async () => {
    const broken = structuredClone(document) as { paths: Paths };
    delete (broken.paths["/trpc/campaigns.create"]!.post as Partial<Operation> & { responses?: unknown }).responses;
    (broken.paths["/trpc/leads.list"]!.get as unknown as { responses: unknown }).responses = { "200": { $ref: "#/components/responses/Nope" } };
    expect((await validate(broken as never)).valid).toBe(false);
  });

  it("lists every procedure once, queries as GET with ?input=, mutations as POST with a JSON body", () => {
    const names = Object.keys(procedures);
    expect(names.length).toBeGreaterThan(50);
    for (const name of names) {
      const item = paths[`/trpc/${name}`];
      expect(item, name).toBeDefined();
      const type = procedures[name]!._def.type;
      const operation = type === "query" ? item!.get : item!.post;
      expect(operation?.operationId, name).toBe(name);
      if (type === "query") expect(item!.post, name).toBeUndefined();
    }
    const trpcPaths = Object.keys(paths).filter((path) => path.startsWith("/trpc/"));
    expect(trpcPaths.sort()).toEqual(names.map((name) => `/trpc/${name}`).sort());
    expect(paths["/trpc/leads.list"]!.get!.parameters).toMatchObject([{ name: "input", in: "query", content: { "application/json": { schema: { type: "object" } } } }]);
    expect(paths["/trpc/campaigns.create"]!.post!.requestBody).toMatchObject({ content: { "application/json": { schema: { required: ["name"] } } } });
  });

  it("names the role each procedure needs, read from the builder it was made with", () => {
    expect(paths["/trpc/users.me"]!.get!["x-required-role"]).toBe("member");
    expect(paths["/trpc/users.setRole"]!.post!["x-required-role"]).toBe("admin");
    const operatorOnly = Object.values(paths).flatMap((item) => Object.values(item)).filter((op) => op["x-required-role"] === "operator");
    expect(operatorOnly.length).toBeGreaterThan(0);
  });

  it("describes inputs as callers send them: startsAt an ISO date-time string or null, defaults optional", () => {
    const create = paths["/trpc/campaigns.create"]!.post!.requestBody as { content: { "application/json": { schema: { properties: Record<string, unknown> } } } };
    expect(create.content["application/json"].schema.properties.startsAt).toMatchObject({ anyOf: [{ type: "string", format: "date-time" }, { type: "null" }] });
    const list = (paths["/trpc/leads.list"]!.get!.parameters![0] as { content: { "application/json": { schema: { required?: string[] } } } }).content["application/json"].schema;
    expect(list.required ?? []).not.toContain("limit");
  });
});
