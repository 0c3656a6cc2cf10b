// The client entry (`edge-data-platform/client`): the router's type as a client sees it, and createClient.
// Built by `npm run build:client` into dist-client/ (declarations only reach what clients need: no Worker types).
import { createTRPCClient, httpBatchLink, httpLink, splitLink, TRPCClientError, type TRPCClient } from "@trpc/client";
import type { TRPC_ERROR_CODE_NUMBER, TRPCBuiltRouter } from "@trpc/server";
import type { ErrorCode, ErrorData, Tier } from "../platform/errors.js";
import type { procedures } from "./procedures.js";

export type { ErrorCode, ErrorData, Tier };

/** The error shape of every procedure: tRPC's numeric code, a message, and `data`. */
export interface ErrorShape {
  code: TRPC_ERROR_CODE_NUMBER;
  message: string;
  data: ErrorData;
}

interface RootTypes {
  ctx: object;
  meta: object;
  errorShape: ErrorShape;
  transformer: false;
}

/** The router's type for clients: `createTRPCClient<AppRouter>` or, simpler, `createClient` below. */
export type AppRouter = TRPCBuiltRouter<RootTypes, typeof procedures>;

/** Calls per batched HTTP request; keep it at or below the server's batch limit (default 10). */
export const defaultMaxBatchItems = 10;

export interface ClientOptions {
  /** The Worker's base URL (e.g. `http://127.0.0.1:8787`) or its tRPC endpoint (`…/trpc`). */
  url: string;
  /** A bearer token (JWT or `edp_…` API key), or a function returning the current one (called per request). */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  /** Calls made in the same tick share one HTTP request, up to this many (default 10). 1 disables batching. */
  maxItems?: number;
  /** Extra headers sent with every request (e.g. `X-Request-Id`). */
  headers?: Record<string, string>;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof globalThis.fetch;
}

/** The tRPC endpoint for a base URL or an endpoint URL. */
export function trpcUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  return trimmed.endsWith("/trpc") ? trimmed : `${trimmed}/trpc`;
}

/** A typed client: `client.campaigns.create.mutate({ name })`, `client.notifications.list.query({})`. */
export function createClient(options: ClientOptions): TRPCClient<AppRouter> {
  const url = trpcUrl(options.url);
  const maxItems = options.maxItems ?? defaultMaxBatchItems;
  if (!Number.isInteger(maxItems) || maxItems < 1) throw new RangeError("maxItems must be a positive integer");
  const headers = async (): Promise<Record<string, string>> => {
    const token = typeof options.token === "function" ? await options.token() : options.token;
    return { ...options.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) };
  };
  const common = { url, headers, ...(options.fetch ? { fetch: options.fetch } : {}) };
  return createTRPCClient<AppRouter>({
    links: [
      maxItems === 1
        ? httpLink(common)
        : splitLink({
            condition: (op) => op.context.batch === false,
            true: httpLink(common),
            false: httpBatchLink({ ...common, maxItems }),
          }),
    ],
  });
}

/** The error every failed call rejects with; `error.data?.code` is the stable machine code. */
export type ClientError = TRPCClientError<AppRouter>;

/** Narrows an unknown rejection to a client error, optionally of one code: `if (isClientError(e, "NOT_FOUND"))`. */
export function isClientError(error: unknown, code?: ErrorCode): error is ClientError {
  if (!(error instanceof TRPCClientError)) return false;
  const data = (error as ClientError).data;
  return code === undefined || data?.code === code;
}

/** Input and output types of every procedure: `RouterInputs["campaigns"]["create"]`. */
export type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
export type RouterInputs = import("@trpc/server").inferRouterInputs<AppRouter>;
export type RouterOutputs = import("@trpc/server").inferRouterOutputs<AppRouter>;
