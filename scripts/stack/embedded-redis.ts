// Embedded backend of the local Upstash endpoint: an in-memory keyspace answering as Redis 7 does, Lua run by fengari.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { CommandError, type Backend, type Reply } from "./upstash-endpoint";

// ioredis-mock was the first choice, but it ignores the lower-case option words @upstash/redis sends
// (`set k v nx ex 10` sets without NX or TTL; `zadd z nx 1 a` fails; `ch` becomes a member), skips
// WRONGTYPE and integer checks, has no SCRIPT LOAD, cannot compile a `#!lua` shebang and hands HMGET's
// nil to Lua as a JS null instead of false (the tokenBucket script dies on it). So the store here is
// its own, and an unknown or unsupported command is refused rather than half-done.

class Status {
  constructor(readonly text: string) {}
}
const OK = new Status("OK");
type Out = null | number | string | Status | Out[];

const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT = "ERR value is not an integer or out of range";
const NOT_FLOAT = "ERR value is not a valid float";
const SYNTAX = "ERR syntax error";
const EXECABORT = "EXECABORT Transaction discarded because of previous errors.";

function fail(message: string): never {
  throw new CommandError(message);
}

interface Values {
  string: string;
  hash: Map<string, string>;
  set: Set<string>;
  zset: Map<string, number>;
  list: string[];
}
type Kind = keyof Values;
type Entry = { [K in Kind]: { kind: K; value: Values[K]; expiresAt?: number } }[Kind];

class Keyspace {
  private readonly map = new Map<string, Entry>();

  // Expiry is lazy, as in Redis: a key past its deadline is gone the moment anything looks at it.
  entry(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (e?.expiresAt !== undefined && e.expiresAt <= Date.now()) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }

  get<K extends Kind>(key: string, kind: K): Values[K] | undefined {
    const e = this.entry(key);
    if (e && e.kind !== kind) fail(WRONGTYPE);
    return e?.value as Values[K] | undefined;
  }

  upsert<K extends Kind>(key: string, kind: K, empty: () => Values[K]): Values[K] {
    const existing = this.get(key, kind);
    if (existing !== undefined) return existing;
    const value = empty();
    this.map.set(key, { kind, value } as Entry);
    return value;
  }

  put(key: string, entry: Entry): void {
    this.map.set(key, entry);
  }

  delete(key: string): boolean {
    return this.entry(key) !== undefined && this.map.delete(key);
  }

  // An emptied collection disappears, as in Redis.
  dropIfEmpty(key: string, size: number): void {
    if (size === 0) this.map.delete(key);
  }

  keys(): string[] {
    return [...this.map.keys()].filter((k) => this.entry(k) !== undefined);
  }

  clear(): void {
    this.map.clear();
  }
}

function int(s: string, message = NOT_INT): number {
  if (!/^-?(0|[1-9]\d*)$/.test(s)) fail(message);
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : fail(message);
}

function float(s: string, message = NOT_FLOAT): number {
  const t = s.toLowerCase();
  if (t === "inf" || t === "+inf") return Infinity;
  if (t === "-inf") return -Infinity;
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) : fail(message);
}

// Scores and Lua numbers as Redis prints doubles: shortest round-trip digits, C-style exponent.
function formatDouble(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "nan" : n > 0 ? "inf" : "-inf";
  const exp = n === 0 ? 0 : Math.floor(Math.log10(Math.abs(n)));
  if (exp >= 17 || exp < -4) return n.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  return String(n);
}

// INCRBYFLOAT computes in long double and prints at most 17 significant digits, so 0.1 + 0.2 is "0.3".
const formatIncrFloat = (n: number): string => String(Number(n.toPrecision(15)));

function globToRegExp(pattern: string): RegExp {
  const special = /[\\^$.*+?()[\]{}|/-]/g;
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "\\" && i + 1 < pattern.length) re += pattern[++i]!.replace(special, "\\$&");
    else if (c === "[" && pattern.indexOf("]", i + 2) > 0) {
      const end = pattern.indexOf("]", i + 2);
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith("^");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/[\\\]^[]/g, "\\$&")}]`;
      i = end;
    } else re += c.replace(special, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

// Ranks as Redis takes them: negative counts from the end, out-of-range ends are clamped.
function indexRange(length: number, start: number, stop: number): [number, number] | undefined {
  if (start < 0) start = Math.max(0, length + start);
  if (stop < 0) stop = length + stop;
  if (start > stop || start >= length) return undefined;
  return [start, Math.min(stop, length - 1)];
}

interface Bound {
  value: number;
  exclusive: boolean;
}
function bound(s: string): Bound {
  const exclusive = s.startsWith("(");
  return { value: float(exclusive ? s.slice(1) : s, "ERR min or max is not a float"), exclusive };
}
const within = (score: number, min: Bound, max: Bound): boolean =>
  (min.exclusive ? score > min.value : score >= min.value) && (max.exclusive ? score < max.value : score <= max.value);

function sortedZset(z: Map<string, number>): [string, number][] {
  return [...z].sort(([ma, sa], [mb, sb]) => sa - sb || (ma < mb ? -1 : ma > mb ? 1 : 0));
}

function expiryFor(unit: string, arg: string, command: string): number {
  const n = int(arg);
  if (n <= 0) fail(`ERR invalid expire time in '${command}' command`);
  const now = Date.now();
  return unit === "EX" ? now + n * 1000 : unit === "PX" ? now + n : unit === "EXAT" ? n * 1000 : n;
}

// SCAN-family options. Every scan answers in one page with cursor 0, which Redis allows (COUNT is a hint).
function scanOptions(args: string[]): { match?: RegExp; type?: string } {
  const out: { match?: RegExp; type?: string } = {};
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i]!.toUpperCase();
    const value = args[i + 1];
    if (value === undefined) fail(SYNTAX);
    if (name === "MATCH") out.match = globToRegExp(value);
    else if (name === "COUNT") {
      if (int(value) < 1) fail(SYNTAX);
    } else if (name === "TYPE") out.type = value.toLowerCase();
    else fail(SYNTAX);
  }
  return out;
}

function scanCursor(s: string): void {
  if (!/^\d+$/.test(s)) fail("ERR invalid cursor");
}

type Handler = (args: string[]) => Out;
interface Spec {
  /** As Redis counts it: the name included; negative means "at least". */
  arity: number;
  run: Handler;
  /** Refused inside scripts, as Redis refuses them. */
  noScript?: boolean;
}

class EmbeddedRedis {
  private readonly db = new Keyspace();
  private readonly lua = new LuaEngine((args) => this.fromScript(args));
  private readonly commands: Record<string, Spec> = this.buildCommands();

  /** Why Redis would refuse the command before running it (unknown name, wrong arity), if it would. */
  check(args: string[]): string | undefined {
    const [name = "", ...rest] = args;
    const spec = this.commands[name.toLowerCase()];
    if (!spec) return `ERR unknown command '${name}', with args beginning with: ${rest.map((a) => `'${a}' `).join("")}`;
    const ok = spec.arity > 0 ? args.length === spec.arity : args.length >= -spec.arity;
    return ok ? undefined : `ERR wrong number of arguments for '${name.toLowerCase()}' command`;
  }

  execute(args: string[]): Out {
    const refused = this.check(args);
    if (refused) fail(refused);
    return this.commands[args[0]!.toLowerCase()]!.run(args.slice(1));
  }

  flush(): void {
    this.db.clear();
  }

  private fromScript(args: string[]): Out {
    if (args.length === 0) fail("ERR Please specify at least one argument for this redis lib call");
    const spec = this.commands[args[0]!.toLowerCase()];
    if (!spec) fail("ERR Unknown Redis command called from script");
    if (spec.noScript) fail("ERR This Redis command is not allowed from script");
    if (this.check(args)) fail("ERR Wrong number of args calling Redis command from script");
    return spec.run(args.slice(1));
  }

  private buildCommands(): Record<string, Spec> {
    const db = this.db;
    const c = (arity: number, run: Handler, noScript = false): Spec => ({ arity, run, noScript });
    const str = (key: string): string | undefined => db.get(key, "string");

    const incrBy = (key: string, delta: number): number => {
      const e = db.entry(key);
      if (e && e.kind !== "string") fail(WRONGTYPE);
      const next = (e ? int(e.value) : 0) + delta;
      if (!Number.isSafeInteger(next)) fail("ERR increment or decrement would overflow");
      if (e) e.value = String(next);
      else db.put(key, { kind: "string", value: String(next) });
      return next;
    };

    const set = ([key, value, ...opts]: string[]): Out => {
      let cond: string | undefined;
      let get = false;
      let keepTtl = false;
      let expiresAt: number | undefined;
      for (let i = 0; i < opts.length; i++) {
        const o = opts[i]!.toUpperCase();
        const timed = keepTtl || expiresAt !== undefined;
        if ((o === "NX" || o === "XX") && (cond === undefined || cond === o)) cond = o;
        else if (o === "GET") get = true;
        else if (o === "KEEPTTL" && !timed) keepTtl = true;
        else if (["EX", "PX", "EXAT", "PXAT"].includes(o) && !timed && i + 1 < opts.length) {
          expiresAt = expiryFor(o, opts[++i]!, "set");
        } else fail(SYNTAX);
      }
      const old = db.entry(key!);
      if (get && old && old.kind !== "string") fail(WRONGTYPE);
      const previous = old ? (old.value as string) : null;
      if ((cond === "NX" && old) || (cond === "XX" && !old)) return get ? previous : null;
      db.put(key!, { kind: "string", value: value!, expiresAt: keepTtl ? old?.expiresAt : expiresAt });
      return get ? previous : OK;
    };

    const setWithTtl = (unit: string, command: string) => ([key, ttl, value]: string[]): Out => {
      db.put(key!, { kind: "string", value: value!, expiresAt: expiryFor(unit, ttl!, command) });
      return OK;
    };

    const pairs = (command: string, args: string[]): [string, string][] => {
      if (args.length % 2 !== 0) fail(`ERR wrong number of arguments for '${command}' command`);
      const out: [string, string][] = [];
      for (let i = 0; i < args.length; i += 2) out.push([args[i]!, args[i + 1]!]);
      return out;
    };

    const expire = (unit: "EX" | "PX" | "EXAT" | "PXAT") => ([key, time, ...opts]: string[]): number => {
      const n = int(time!);
      const flags = new Set<string>();
      for (const o of opts) {
        const f = o.toUpperCase();
        if (!["NX", "XX", "GT", "LT"].includes(f)) fail(`ERR Unsupported option ${o}`);
        flags.add(f);
      }
      if (flags.has("NX") && flags.size > 1) fail("ERR NX and XX, GT or LT options at the same time are not compatible");
      if (flags.has("GT") && flags.has("LT")) fail("ERR GT and LT options at the same time are not compatible");
      const now = Date.now();
      const at = unit === "EX" ? now + n * 1000 : unit === "PX" ? now + n : unit === "EXAT" ? n * 1000 : n;
      const e = db.entry(key!);
      if (!e) return 0;
      const current = e.expiresAt;
      if (flags.has("NX") && current !== undefined) return 0;
      if (flags.has("XX") && current === undefined) return 0;
      if (flags.has("GT") && (current === undefined || at <= current)) return 0;
      if (flags.has("LT") && current !== undefined && at >= current) return 0;
      if (at <= now) db.delete(key!);
      else e.expiresAt = at;
      return 1;
    };

    const ttl = (ms: boolean, absolute: boolean) => ([key]: string[]): number => {
      const e = db.entry(key!);
      if (!e) return -2;
      if (e.expiresAt === undefined) return -1;
      if (absolute) return ms ? e.expiresAt : Math.floor(e.expiresAt / 1000);
      const left = e.expiresAt - Date.now();
      return ms ? left : Math.floor((left + 500) / 1000);
    };

    const hashIncr = (integer: boolean) => ([key, field, by]: string[]): Out => {
      const parse = integer ? int : float;
      const delta = parse(by!);
      const h = db.upsert(key!, "hash", () => new Map());
      const old = h.get(field!);
      const next = (old === undefined ? 0 : parse(old, `ERR hash value is not ${integer ? "an integer" : "a float"}`)) + delta;
      if (integer && !Number.isSafeInteger(next)) fail("ERR increment or decrement would overflow");
      if (!Number.isFinite(next)) fail("ERR increment would produce NaN or Infinity");
      const stored = integer ? String(next) : formatIncrFloat(next);
      h.set(field!, stored);
      return integer ? next : stored;
    };

    const zrange = ([key, start, stop, ...opts]: string[]): Out => {
      let byScore = false;
      let rev = false;
      let withScores = false;
      let limit: [number, number] | undefined;
      for (let i = 0; i < opts.length; i++) {
        const o = opts[i]!.toUpperCase();
        if (o === "BYSCORE") byScore = true;
        else if (o === "BYLEX") fail("ERR BYLEX is not supported by the embedded Redis");
        else if (o === "REV") rev = true;
        else if (o === "WITHSCORES") withScores = true;
        else if (o === "LIMIT" && i + 2 < opts.length) limit = [int(opts[++i]!), int(opts[++i]!)];
        else fail(SYNTAX);
      }
      if (limit && !byScore) fail("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
      let pick: (items: [string, number][]) => [string, number][];
      if (byScore) {
        const [min, max] = rev ? [bound(stop!), bound(start!)] : [bound(start!), bound(stop!)];
        pick = (items) => {
          const hits = items.filter(([, s]) => within(s, min, max));
          if (!limit) return hits;
          const [offset, count] = limit;
          return offset < 0 ? [] : hits.slice(offset, count < 0 ? undefined : offset + count);
        };
      } else {
        const [from, to] = [int(start!), int(stop!)];
        pick = (items) => {
          const r = indexRange(items.length, from, to);
          return r ? items.slice(r[0], r[1] + 1) : [];
        };
      }
      const z = db.get(key!, "zset");
      if (!z) return [];
      const items = sortedZset(z);
      if (rev) items.reverse();
      const hits = pick(items);
      return withScores ? hits.flatMap(([m, s]) => [m, formatDouble(s)]) : hits.map(([m]) => m);
    };

    const zadd = ([key, ...rest]: string[]): Out => {
      const flags = new Set<string>();
      let i = 0;
      for (; i < rest.length && ["NX", "XX", "GT", "LT", "CH", "INCR"].includes(rest[i]!.toUpperCase()); i++) {
        flags.add(rest[i]!.toUpperCase());
      }
      const args = rest.slice(i);
      if (args.length === 0 || args.length % 2 !== 0) fail(SYNTAX);
      if (flags.has("NX") && flags.has("XX")) fail("ERR XX and NX options at the same time are not compatible");
      if ((flags.has("GT") && flags.has("LT")) || ((flags.has("GT") || flags.has("LT")) && flags.has("NX"))) {
        fail("ERR GT, LT, and/or NX options at the same time are not compatible");
      }
      const incr = flags.has("INCR");
      if (incr && args.length > 2) fail("ERR INCR option supports a single increment-element pair");
      const scores = args.filter((_, j) => j % 2 === 0).map((s) => float(s));
      const existing = db.get(key!, "zset");
      if (!existing && flags.has("XX")) return incr ? null : 0;
      const z = existing ?? db.upsert(key!, "zset", () => new Map());
      let added = 0;
      let changed = 0;
      let result: number | null = null;
      scores.forEach((given, j) => {
        const member = args[j * 2 + 1]!;
        const old = z.get(member);
        if (old === undefined) {
          if (flags.has("XX")) return;
          z.set(member, given);
          added++;
          result = given;
          return;
        }
        if (flags.has("NX")) return;
        const score = incr ? old + given : given;
        if (Number.isNaN(score)) fail("ERR resulting score is not a number (NaN)");
        if ((flags.has("GT") && score <= old) || (flags.has("LT") && score >= old)) return;
        if (score !== old) {
          z.set(member, score);
          changed++;
        }
        result = score;
      });
      if (incr) return result === null ? null : formatDouble(result);
      return added + (flags.has("CH") ? changed : 0);
    };

    const zremWhere = (key: string, pick: (items: [string, number][]) => [string, number][]): number => {
      const z = db.get(key, "zset");
      if (!z) return 0;
      const doomed = pick(sortedZset(z));
      for (const [m] of doomed) z.delete(m);
      db.dropIfEmpty(key, z.size);
      return doomed.length;
    };

    const zrank = (rev: boolean) => ([key, member]: string[]): Out => {
      const z = db.get(key!, "zset");
      if (!z?.has(member!)) return null;
      const order = sortedZset(z).map(([m]) => m);
      const at = order.indexOf(member!);
      return rev ? order.length - 1 - at : at;
    };

    const push = (left: boolean) => ([key, ...values]: string[]): number => {
      const l = db.upsert(key!, "list", () => []);
      for (const v of values) left ? l.unshift(v) : l.push(v);
      return l.length;
    };

    const pop = (left: boolean) => ([key, count]: string[]): Out => {
      const n = count === undefined ? undefined : int(count, "ERR value is out of range, must be positive");
      if (n !== undefined && n < 0) fail("ERR value is out of range, must be positive");
      const l = db.get(key!, "list");
      if (!l) return null;
      const taken = left ? l.splice(0, n ?? 1) : l.splice(Math.max(0, l.length - (n ?? 1))).reverse();
      db.dropIfEmpty(key!, l.length);
      return n === undefined ? (taken[0] ?? null) : taken;
    };

    const collectionScan = <K extends "hash" | "set" | "zset">(
      kind: K,
      flatten: (v: Values[K], match: (s: string) => boolean) => string[],
    ) => ([key, cursor, ...opts]: string[]): Out => {
      scanCursor(cursor!);
      const { match } = scanOptions(opts);
      const v = db.get(key!, kind);
      return ["0", v ? flatten(v, (s) => !match || match.test(s)) : []];
    };

    const script = (sub: string, args: string[]): Out => {
      const name = sub.toLowerCase();
      if (name === "load" && args.length === 1) return this.lua.load(args[0]!);
      if (name === "exists" && args.length >= 1) return args.map((sha) => (this.lua.has(sha) ? 1 : 0));
      if (name === "flush" && args.length <= 1) {
        this.lua.flush();
        return OK;
      }
      if (["load", "exists", "flush"].includes(name)) fail(`ERR wrong number of arguments for 'script|${name}' command`);
      return fail(`ERR unknown subcommand '${sub}'. Try SCRIPT HELP.`);
    };

    const evaluate = (bySha: boolean) => ([scriptOrSha, numKeys, ...rest]: string[]): Out => {
      const n = int(numKeys!);
      if (n < 0) fail("ERR Number of keys can't be negative");
      if (n > rest.length) fail("ERR Number of keys can't be greater than number of args");
      const sha = bySha ? scriptOrSha!.toLowerCase() : this.lua.load(scriptOrSha!);
      return this.lua.run(sha, rest.slice(0, n), rest.slice(n));
    };

    return {
      // Strings
      get: c(2, ([k]) => str(k!) ?? null),
      set: c(-3, set),
      setnx: c(3, ([k, v]) => {
        if (db.entry(k!)) return 0;
        db.put(k!, { kind: "string", value: v! });
        return 1;
      }),
      setex: c(4, setWithTtl("EX", "setex")),
      psetex: c(4, setWithTtl("PX", "psetex")),
      getset: c(3, ([k, v]) => {
        const old = str(k!) ?? null;
        db.put(k!, { kind: "string", value: v! });
        return old;
      }),
      getdel: c(2, ([k]) => {
        const old = str(k!) ?? null;
        if (old !== null) db.delete(k!);
        return old;
      }),
      getex: c(-2, ([k, ...opts]) => {
        const o = opts[0]?.toUpperCase();
        const persist = o === "PERSIST" && opts.length === 1;
        const timed = ["EX", "PX", "EXAT", "PXAT"].includes(o ?? "") && opts.length === 2;
        if (opts.length > 0 && !persist && !timed) fail(SYNTAX);
        const at = timed ? expiryFor(o!, opts[1]!, "getex") : undefined;
        const value = str(k!);
        const e = db.entry(k!);
        if (e && (persist || timed)) e.expiresAt = at;
        return value ?? null;
      }),
      mget: c(-2, (keys) => keys.map((k) => {
        const e = db.entry(k);
        return e?.kind === "string" ? e.value : null;
      })),
      mset: c(-3, (args) => {
        for (const [k, v] of pairs("mset", args)) db.put(k, { kind: "string", value: v });
        return OK;
      }),
      msetnx: c(-3, (args) => {
        const kv = pairs("msetnx", args);
        if (kv.some(([k]) => db.entry(k))) return 0;
        for (const [k, v] of kv) db.put(k, { kind: "string", value: v });
        return 1;
      }),
      incr: c(2, ([k]) => incrBy(k!, 1)),
      decr: c(2, ([k]) => incrBy(k!, -1)),
      incrby: c(3, ([k, by]) => incrBy(k!, int(by!))),
      decrby: c(3, ([k, by]) => incrBy(k!, -int(by!))),
      incrbyfloat: c(3, ([k, by]) => {
        const delta = float(by!);
        const e = db.entry(k!);
        if (e && e.kind !== "string") fail(WRONGTYPE);
        const next = (e ? float(e.value) : 0) + delta;
        if (!Number.isFinite(next)) fail("ERR increment would produce NaN or Infinity");
        const value = formatIncrFloat(next);
        if (e) e.value = value;
        else db.put(k!, { kind: "string", value });
        return value;
      }),
      append: c(3, ([k, v]) => {
        const e = db.entry(k!);
        if (e && e.kind !== "string") fail(WRONGTYPE);
        const value = (e ? e.value : "") + v!;
        if (e) e.value = value;
        else db.put(k!, { kind: "string", value });
        return Buffer.byteLength(value);
      }),
      strlen: c(2, ([k]) => Buffer.byteLength(str(k!) ?? "")),
      getrange: c(4, ([k, start, end]) => {
        const [from, to] = [int(start!), int(end!)];
        const bytes = Buffer.from(str(k!) ?? "");
        const r = indexRange(bytes.length, from, to);
        return r ? bytes.subarray(r[0], r[1] + 1).toString() : "";
      }),

      // Keys
      del: c(-2, (keys) => keys.filter((k) => db.delete(k)).length),
      unlink: c(-2, (keys) => keys.filter((k) => db.delete(k)).length),
      exists: c(-2, (keys) => keys.filter((k) => db.entry(k)).length),
      touch: c(-2, (keys) => keys.filter((k) => db.entry(k)).length),
      type: c(2, ([k]) => new Status(db.entry(k!)?.kind ?? "none")),
      expire: c(-3, expire("EX")),
      pexpire: c(-3, expire("PX")),
      expireat: c(-3, expire("EXAT")),
      pexpireat: c(-3, expire("PXAT")),
      ttl: c(2, ttl(false, false)),
      pttl: c(2, ttl(true, false)),
      expiretime: c(2, ttl(false, true)),
      pexpiretime: c(2, ttl(true, true)),
      persist: c(2, ([k]) => {
        const e = db.entry(k!);
        if (e?.expiresAt === undefined) return 0;
        e.expiresAt = undefined;
        return 1;
      }),
      keys: c(2, ([pattern]) => {
        const re = globToRegExp(pattern!);
        return db.keys().filter((k) => re.test(k));
      }),
      scan: c(-2, ([cursor, ...opts]) => {
        scanCursor(cursor!);
        const { match, type } = scanOptions(opts);
        return ["0", db.keys().filter((k) => (!match || match.test(k)) && (!type || db.entry(k)?.kind === type))];
      }),
      rename: c(3, ([from, to]) => {
        const e = db.entry(from!) ?? fail("ERR no such key");
        db.delete(from!);
        db.put(to!, e);
        return OK;
      }),
      renamenx: c(3, ([from, to]) => {
        const e = db.entry(from!) ?? fail("ERR no such key");
        if (db.entry(to!)) return 0;
        db.delete(from!);
        db.put(to!, e);
        return 1;
      }),
      dbsize: c(1, () => db.keys().length),
      flushdb: c(-1, () => {
        db.clear();
        return OK;
      }),
      flushall: c(-1, () => {
        db.clear();
        return OK;
      }),

      // Hashes
      hset: c(-4, ([k, ...args]) => {
        const fields = pairs("hset", args);
        const h = db.upsert(k!, "hash", () => new Map());
        let added = 0;
        for (const [f, v] of fields) {
          if (!h.has(f)) added++;
          h.set(f, v);
        }
        return added;
      }),
      hmset: c(-4, ([k, ...args]) => {
        const fields = pairs("hmset", args);
        const h = db.upsert(k!, "hash", () => new Map());
        for (const [f, v] of fields) h.set(f, v);
        return OK;
      }),
      hsetnx: c(4, ([k, f, v]) => {
        const h = db.upsert(k!, "hash", () => new Map());
        if (h.has(f!)) return 0;
        h.set(f!, v!);
        return 1;
      }),
      hget: c(3, ([k, f]) => db.get(k!, "hash")?.get(f!) ?? null),
      hmget: c(-3, ([k, ...fields]) => {
        const h = db.get(k!, "hash");
        return fields.map((f) => h?.get(f) ?? null);
      }),
      hgetall: c(2, ([k]) => [...(db.get(k!, "hash") ?? [])].flat()),
      hkeys: c(2, ([k]) => [...(db.get(k!, "hash")?.keys() ?? [])]),
      hvals: c(2, ([k]) => [...(db.get(k!, "hash")?.values() ?? [])]),
      hlen: c(2, ([k]) => db.get(k!, "hash")?.size ?? 0),
      hstrlen: c(3, ([k, f]) => Buffer.byteLength(db.get(k!, "hash")?.get(f!) ?? "")),
      hexists: c(3, ([k, f]) => (db.get(k!, "hash")?.has(f!) ? 1 : 0)),
      hdel: c(-3, ([k, ...fields]) => {
        const h = db.get(k!, "hash");
        if (!h) return 0;
        const removed = fields.filter((f) => h.delete(f)).length;
        db.dropIfEmpty(k!, h.size);
        return removed;
      }),
      hincrby: c(4, hashIncr(true)),
      hincrbyfloat: c(4, hashIncr(false)),
      hscan: c(-3, collectionScan("hash", (h, m) => [...h].filter(([f]) => m(f)).flat())),

      // Sets
      sadd: c(-3, ([k, ...members]) => {
        const s = db.upsert(k!, "set", () => new Set());
        const before = s.size;
        for (const m of members) s.add(m);
        return s.size - before;
      }),
      srem: c(-3, ([k, ...members]) => {
        const s = db.get(k!, "set");
        if (!s) return 0;
        const removed = members.filter((m) => s.delete(m)).length;
        db.dropIfEmpty(k!, s.size);
        return removed;
      }),
      smembers: c(2, ([k]) => [...(db.get(k!, "set") ?? [])]),
      sismember: c(3, ([k, m]) => (db.get(k!, "set")?.has(m!) ? 1 : 0)),
      smismember: c(-3, ([k, ...members]) => {
        const s = db.get(k!, "set");
        return members.map((m) => (s?.has(m) ? 1 : 0));
      }),
      scard: c(2, ([k]) => db.get(k!, "set")?.size ?? 0),
      sscan: c(-3, collectionScan("set", (s, m) => [...s].filter(m))),

      // Sorted sets
      zadd: c(-4, zadd),
      zincrby: c(4, ([k, by, member]) => zadd([k!, "INCR", by!, member!])),
      zscore: c(3, ([k, m]) => {
        const s = db.get(k!, "zset")?.get(m!);
        return s === undefined ? null : formatDouble(s);
      }),
      zmscore: c(-3, ([k, ...members]) => {
        const z = db.get(k!, "zset");
        return members.map((m) => {
          const s = z?.get(m);
          return s === undefined ? null : formatDouble(s);
        });
      }),
      zcard: c(2, ([k]) => db.get(k!, "zset")?.size ?? 0),
      zcount: c(4, ([k, min, max]) => {
        const [lo, hi] = [bound(min!), bound(max!)];
        return [...(db.get(k!, "zset")?.values() ?? [])].filter((s) => within(s, lo, hi)).length;
      }),
      zrange: c(-4, zrange),
      zrevrange: c(-4, ([k, start, stop, ...opts]) => zrange([k!, start!, stop!, "REV", ...opts])),
      zrangebyscore: c(-4, ([k, min, max, ...opts]) => zrange([k!, min!, max!, "BYSCORE", ...opts])),
      zrevrangebyscore: c(-4, ([k, max, min, ...opts]) => zrange([k!, max!, min!, "BYSCORE", "REV", ...opts])),
      zrank: c(3, zrank(false)),
      zrevrank: c(3, zrank(true)),
      zrem: c(-3, ([k, ...members]) => {
        const z = db.get(k!, "zset");
        if (!z) return 0;
        const removed = members.filter((m) => z.delete(m)).length;
        db.dropIfEmpty(k!, z.size);
        return removed;
      }),
      zremrangebyscore: c(4, ([k, min, max]) => {
        const [lo, hi] = [bound(min!), bound(max!)];
        return zremWhere(k!, (items) => items.filter(([, s]) => within(s, lo, hi)));
      }),
      zremrangebyrank: c(4, ([k, start, stop]) => {
        const [from, to] = [int(start!), int(stop!)];
        return zremWhere(k!, (items) => {
          const r = indexRange(items.length, from, to);
          return r ? items.slice(r[0], r[1] + 1) : [];
        });
      }),
      zscan: c(-3, collectionScan("zset", (z, m) => sortedZset(z).filter(([mm]) => m(mm)).flatMap(([mm, s]) => [mm, formatDouble(s)]))),

      // Lists
      lpush: c(-3, push(true)),
      rpush: c(-3, push(false)),
      lpop: c(-2, pop(true)),
      rpop: c(-2, pop(false)),
      llen: c(2, ([k]) => db.get(k!, "list")?.length ?? 0),
      lrange: c(4, ([k, start, stop]) => {
        const [from, to] = [int(start!), int(stop!)];
        const l = db.get(k!, "list") ?? [];
        const r = indexRange(l.length, from, to);
        return r ? l.slice(r[0], r[1] + 1) : [];
      }),
      lindex: c(3, ([k, index]) => {
        const i = int(index!);
        const l = db.get(k!, "list") ?? [];
        return l[i < 0 ? l.length + i : i] ?? null;
      }),
      ltrim: c(4, ([k, start, stop]) => {
        const [from, to] = [int(start!), int(stop!)];
        const l = db.get(k!, "list");
        if (!l) return OK;
        const r = indexRange(l.length, from, to);
        const kept = r ? l.slice(r[0], r[1] + 1) : [];
        l.splice(0, l.length, ...kept);
        db.dropIfEmpty(k!, l.length);
        return OK;
      }),

      // Server
      ping: c(-1, (args) => (args.length > 1 ? fail("ERR wrong number of arguments for 'ping' command") : args[0] ?? new Status("PONG"))),
      echo: c(2, ([m]) => m!),
      time: c(1, () => {
        const us = BigInt(Date.now()) * 1000n;
        return [String(us / 1_000_000n), String(us % 1_000_000n)];
      }),

      // Scripting
      eval: c(-3, evaluate(false), true),
      eval_ro: c(-3, evaluate(false), true),
      evalsha: c(-3, evaluate(true), true),
      evalsha_ro: c(-3, evaluate(true), true),
      script: c(-2, ([sub, ...args]) => script(sub!, args), true),
    };
  }
}

// --- Lua, by fengari (Lua 5.3; Redis embeds 5.1). The typings cover only what is used here.

interface LuaState {
  readonly __brand: "lua_State";
}
interface LuaDebug {
  currentline: number;
  source: Uint8Array | null;
}
interface Fengari {
  to_luastring(s: string): Uint8Array;
  lua: {
    LUA_OK: number;
    LUA_TNIL: number;
    LUA_TBOOLEAN: number;
    LUA_TNUMBER: number;
    LUA_TSTRING: number;
    LUA_TTABLE: number;
    LUA_REGISTRYINDEX: number;
    lua_Debug: new () => LuaDebug;
    lua_createtable(L: LuaState, narr: number, nrec: number): void;
    lua_error(L: LuaState): never;
    lua_getfield(L: LuaState, idx: number, k: string): number;
    lua_getinfo(L: LuaState, what: string, ar: LuaDebug): number;
    lua_getstack(L: LuaState, level: number, ar: LuaDebug): number;
    lua_gettop(L: LuaState): number;
    lua_isinteger(L: LuaState, idx: number): boolean;
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
    lua_pushboolean(L: LuaState, b: boolean): void;
    lua_pushglobaltable(L: LuaState): void;
    lua_pushinteger(L: LuaState, n: number): void;
    lua_pushjsfunction(L: LuaState, f: (L: LuaState) => number): void;
    lua_pushstring(L: LuaState, s: string | Uint8Array): void;
    lua_rawgeti(L: LuaState, idx: number, n: number): number;
    lua_rawset(L: LuaState, idx: number): void;
    lua_rawseti(L: LuaState, idx: number, n: number): void;
    lua_setfield(L: LuaState, idx: number, k: string): void;
    lua_setglobal(L: LuaState, name: string): void;
    lua_settop(L: LuaState, idx: number): void;
    lua_toboolean(L: LuaState, idx: number): boolean;
    lua_tointeger(L: LuaState, idx: number): number;
    lua_tolstring(L: LuaState, idx: number): Uint8Array;
    lua_tonumber(L: LuaState, idx: number): number;
    lua_type(L: LuaState, idx: number): number;
  };
  lauxlib: {
    luaL_newstate(): LuaState;
    luaL_loadbuffer(L: LuaState, s: Uint8Array, size: number | null, name: string): number;
    luaL_ref(L: LuaState, t: number): number;
    luaL_unref(L: LuaState, t: number, ref: number): void;
  };
  lualib: { luaL_openlibs(L: LuaState): void };
}

// fengari ships untyped and only as a dependency of ioredis-mock, hence require() with local typings.
const { lua, lauxlib, lualib, to_luastring } = createRequire(import.meta.url)("fengari") as Fengari;

const utf8 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("utf8");
const sha1 = (text: string): string => createHash("sha1").update(text).digest("hex");

// Redis 7 makes globals read-only and reading an undefined one an error; Lua 5.1's global unpack is gone in 5.3.
const PRELUDE = `
unpack = table.unpack
setmetatable(_G, {
  __index = function(_, name) error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2) end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
})`;

class LuaEngine {
  private readonly L = lauxlib.luaL_newstate();
  private readonly scripts = new Map<string, number>();
  private errorLine = 0;

  constructor(private readonly dispatch: (args: string[]) => Out) {
    const L = this.L;
    lualib.luaL_openlibs(L);
    lua.lua_createtable(L, 0, 8);
    const fns: Record<string, (L: LuaState) => number> = {
      call: (l) => this.redisCall(l, true),
      pcall: (l) => this.redisCall(l, false),
      status_reply: (l) => this.replyTable(l, "ok"),
      error_reply: (l) => this.replyTable(l, "err"),
      sha1hex: (l) => (lua.lua_pushstring(l, sha1(utf8(lua.lua_tolstring(l, 1) ?? new Uint8Array()))), 1),
      log: () => 0,
      replicate_commands: (l) => (lua.lua_pushboolean(l, true), 1),
      set_repl: () => 0,
    };
    for (const [name, fn] of Object.entries(fns)) {
      lua.lua_pushjsfunction(L, fn);
      lua.lua_setfield(L, -2, name);
    }
    ["LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"].forEach((name, level) => {
      lua.lua_pushinteger(L, level);
      lua.lua_setfield(L, -2, name);
    });
    lua.lua_setglobal(L, "redis");
    if (lauxlib.luaL_loadbuffer(L, to_luastring(PRELUDE), null, "=prelude") !== lua.LUA_OK || lua.lua_pcall(L, 0, 0, 0) !== lua.LUA_OK) {
      throw new Error(`Lua prelude failed: ${utf8(lua.lua_tolstring(L, -1))}`);
    }
  }

  has(sha: string): boolean {
    return this.scripts.has(sha.toLowerCase());
  }

  /** Compiles and caches a script under the SHA1 of its text as given, shebang included, as Redis does. */
  load(script: string): string {
    const sha = sha1(script);
    if (this.scripts.has(sha)) return sha;
    // A shebang (the ratelimit scripts carry Upstash's `#!lua flags=allow-key-locking`) declares
    // flags, which a local store has no use for; it is blanked so line numbers stay right.
    const body = script.startsWith("#!") ? script.replace(/^#![^\n]*/, "") : script;
    const L = this.L;
    if (lauxlib.luaL_loadbuffer(L, to_luastring(body), null, "@user_script") !== lua.LUA_OK) {
      // Lua 5.3 leaves <eof> unquoted where Redis's 5.1 quotes it.
      const message = utf8(lua.lua_tolstring(L, -1)).replace(/near <eof>$/, "near '<eof>'");
      lua.lua_settop(L, 0);
      fail(`ERR Error compiling script (new function): ${message}`);
    }
    this.scripts.set(sha, lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX));
    return sha;
  }

  flush(): void {
    for (const ref of this.scripts.values()) lauxlib.luaL_unref(this.L, lua.LUA_REGISTRYINDEX, ref);
    this.scripts.clear();
  }

  run(sha: string, keys: string[], argv: string[]): Out {
    const ref = this.scripts.get(sha) ?? fail("NOSCRIPT No matching script. Please use EVAL.");
    const L = this.L;
    try {
      lua.lua_pushglobaltable(L);
      for (const [name, values] of [["KEYS", keys], ["ARGV", argv]] as const) {
        lua.lua_pushstring(L, name);
        this.pushOut(L, values);
        lua.lua_rawset(L, -3);
      }
      lua.lua_settop(L, 0);
      lua.lua_pushjsfunction(L, (l) => this.recordErrorLine(l));
      lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, ref);
      if (lua.lua_pcall(L, 0, 1, 1) !== lua.LUA_OK) fail(this.scriptError(L, sha));
      return this.toOut(L, lua.lua_gettop(L), true);
    } finally {
      lua.lua_settop(L, 0);
    }
  }

  private recordErrorLine(L: LuaState): number {
    const ar = new lua.lua_Debug();
    this.errorLine = 0;
    for (let level = 1; lua.lua_getstack(L, level, ar); level++) {
      lua.lua_getinfo(L, "Sl", ar);
      if (ar.currentline > 0 && ar.source && utf8(ar.source) === "@user_script") {
        this.errorLine = ar.currentline;
        break;
      }
    }
    return 1;
  }

  // Worded as Redis 7: the error reply (or "ERR " + Lua message), then where in which script.
  private scriptError(L: LuaState, sha: string): string {
    const where = ` script: ${sha}, on @user_script:${this.errorLine}.`;
    if (lua.lua_type(L, -1) === lua.LUA_TTABLE) {
      lua.lua_getfield(L, -1, "err");
      if (lua.lua_type(L, -1) === lua.LUA_TSTRING) return utf8(lua.lua_tolstring(L, -1)) + where;
    } else if (lua.lua_type(L, -1) === lua.LUA_TSTRING) {
      return `ERR ${utf8(lua.lua_tolstring(L, -1))}${where}`;
    }
    return `ERR unknown error${where}`;
  }

  private redisCall(L: LuaState, raise: boolean): number {
    const args: string[] = [];
    for (let i = 1; i <= lua.lua_gettop(L); i++) {
      const type = lua.lua_type(L, i);
      if (type === lua.LUA_TSTRING) args.push(utf8(lua.lua_tolstring(L, i)));
      else if (type === lua.LUA_TNUMBER) {
        args.push(lua.lua_isinteger(L, i) ? String(lua.lua_tointeger(L, i)) : formatDouble(lua.lua_tonumber(L, i)));
      } else return this.raise(L, "ERR Lua redis lib command arguments must be strings or integers", raise);
    }
    let reply: Out;
    try {
      reply = this.dispatch(args);
    } catch (err) {
      if (err instanceof CommandError) return this.raise(L, err.message, raise);
      throw err;
    }
    this.pushOut(L, reply);
    return 1;
  }

  // redis.call raises {err = message}; redis.pcall returns it.
  private raise(L: LuaState, message: string, raise: boolean): number {
    lua.lua_createtable(L, 0, 1);
    lua.lua_pushstring(L, message);
    lua.lua_setfield(L, -2, "err");
    return raise ? lua.lua_error(L) : 1;
  }

  private replyTable(L: LuaState, field: "ok" | "err"): number {
    const text = lua.lua_type(L, 1) === lua.LUA_TSTRING ? lua.lua_tolstring(L, 1) : new Uint8Array();
    lua.lua_createtable(L, 0, 1);
    lua.lua_pushstring(L, text);
    lua.lua_setfield(L, -2, field);
    return 1;
  }

  // Redis → Lua: nil is false, a status reply is {ok = text}.
  private pushOut(L: LuaState, value: Out): void {
    if (value === null) lua.lua_pushboolean(L, false);
    else if (typeof value === "number") lua.lua_pushinteger(L, value);
    else if (typeof value === "string") lua.lua_pushstring(L, value);
    else if (value instanceof Status) {
      lua.lua_createtable(L, 0, 1);
      lua.lua_pushstring(L, value.text);
      lua.lua_setfield(L, -2, "ok");
    } else {
      lua.lua_createtable(L, value.length, 0);
      value.forEach((v, i) => {
        this.pushOut(L, v);
        lua.lua_rawseti(L, -2, i + 1);
      });
    }
  }

  // Lua → Redis: numbers truncate to integers, false is nil, true is 1, an array ends at its first nil.
  private toOut(L: LuaState, idx: number, topLevel: boolean): Out {
    const type = lua.lua_type(L, idx);
    if (type === lua.LUA_TNUMBER) {
      return lua.lua_isinteger(L, idx) ? lua.lua_tointeger(L, idx) : Math.trunc(lua.lua_tonumber(L, idx));
    }
    if (type === lua.LUA_TSTRING) return utf8(lua.lua_tolstring(L, idx));
    if (type === lua.LUA_TBOOLEAN) return lua.lua_toboolean(L, idx) ? 1 : null;
    if (type !== lua.LUA_TTABLE) return null;
    const top = lua.lua_gettop(L);
    try {
      if (lua.lua_getfield(L, idx, "err") === lua.LUA_TSTRING) {
        const message = utf8(lua.lua_tolstring(L, -1));
        return topLevel ? fail(message) : message;
      }
      if (lua.lua_getfield(L, idx, "ok") === lua.LUA_TSTRING) return new Status(utf8(lua.lua_tolstring(L, -1)));
      const out: Out[] = [];
      for (let i = 1; lua.lua_rawgeti(L, idx, i) !== lua.LUA_TNIL; i++) {
        out.push(this.toOut(L, lua.lua_gettop(L), false));
        lua.lua_settop(L, top);
      }
      return out;
    } finally {
      lua.lua_settop(L, top);
    }
  }
}

function toReply(out: Out): Reply {
  if (out instanceof Status) return out.text;
  return Array.isArray(out) ? out.map(toReply) : out;
}

export function createEmbeddedBackend(): Backend {
  const store = new EmbeddedRedis();
  return {
    kind: "embedded",
    async command(args) {
      return toReply(store.execute(args));
    },
    async transaction(commands) {
      if (commands.some((c) => store.check(c) !== undefined)) fail(EXECABORT);
      return commands.map((c) => {
        try {
          return toReply(store.execute(c));
        } catch (err) {
          if (err instanceof CommandError) return err;
          throw err;
        }
      });
    },
    async ping() {},
    async flush() {
      store.flush();
    },
    async close() {
      store.flush();
    },
  };
}
