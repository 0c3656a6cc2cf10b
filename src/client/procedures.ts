// Type-only module (never imported at run time): the server's procedures as clients see them.
// `procedures`' type is computed here and written out structurally by the declaration emit, so the built
// declarations name no server module: no Worker, database or queue types reach a client's compiler.
import type { TRPCMutationProcedure, TRPCQueryProcedure } from "@trpc/server";
import type { appRouter } from "../root.js";
import type { ErrorShape } from "./index.js";

/**
 * A type written out member by member: named server types (a service's row interface) become plain object
 * types, so the declaration emit prints their shape instead of importing the module that declares them.
 * The `& {}` drops the alias, which is what makes the printer expand it.
 */
type Expand<T> = [T] extends [string]
  ? { [P in T]: P }[T]
  : T extends Date
  ? Date
  : T extends readonly (infer E)[]
    ? T extends unknown[]
      ? Expand<E>[]
      : readonly Expand<E>[]
    : T extends object
      ? { [K in keyof T as `${K & string}`]: Expand<T[K]> } & {}
      : T;

/** A procedure with its input and output kept and the server's error shape replaced by the public one. */
type PublicProcedure<P> = P extends TRPCQueryProcedure<infer D>
  ? TRPCQueryProcedure<{ input: Expand<D["input"]>; output: Expand<D["output"]>; meta: object; errorShape: ErrorShape }>
  : P extends TRPCMutationProcedure<infer D>
    ? TRPCMutationProcedure<{ input: Expand<D["input"]>; output: Expand<D["output"]>; meta: object; errorShape: ErrorShape }>
    : never;

type ServerRecord = (typeof appRouter)["_def"]["record"];

/** A router's record at any depth (`admin.systemEvents.list`): procedures made public, sub-records expanded. */
type PublicNode<V> = V extends TRPCQueryProcedure<infer _D> | TRPCMutationProcedure<infer _D>
  ? PublicProcedure<V>
  : { [K in keyof V as `${K & string}`]: PublicNode<V[K]> } & {};

declare function publicRecord<R extends ServerRecord>(record: R): PublicNode<R>;
declare const serverRecord: ServerRecord;

export const procedures = publicRecord(serverRecord);
