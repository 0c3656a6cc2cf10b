// Layering rules for src/ (run by `npm run lint:deps`).
//
//   src/*.ts            root composition files: may import anything
//   src/tiers/<tier>/   oltp, content, jobs, notifications, olap; index.ts is the tier's public face
//   src/lifecycle/      behaves like a tier; index.ts is its public face
//   src/platform/       db, job runtime, clock, services, env, errors, logger, auth, tRPC, cron
//                       registry, signed links, emitter interfaces: imports no tier and no root file
//   src/client/         the published client entry, above the root: reads the router's type (type
//                       imports only) and nothing on the server imports it
//
// Parsing: the project is on TypeScript 7 (the native port), whose package has no JavaScript
// compiler API, and dependency-cruiser only uses `typescript` < 7. So .ts files are parsed with
// swc (`parser: "swc"`, @swc/core is a devDependency), which also marks `import type` edges as
// "type-only". Those edges stay in the graph: the layering rules apply to them too (a type
// import still couples a module to the layer it names); only the cycle rule ignores them.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "Import cycles make module initialisation order fragile. Cycles that pass through an " +
        "`import type` edge are ignored: with verbatimModuleSyntax those imports are erased and " +
        "cannot affect load order.",
      from: { path: "^src/" },
      to: {
        circular: true,
        viaOnly: { dependencyTypesNot: ["type-only"] },
      },
    },
    {
      name: "platform-imports-no-tier",
      severity: "error",
      comment:
        "src/platform is the layer everything else builds on; it must not reach up into a tier " +
        "or src/lifecycle. (Its imports of root files are caught by no-root-imports.)",
      from: { path: "^src/platform/" },
      to: { path: "^src/(tiers|lifecycle)/" },
    },
    {
      name: "tiers-talk-through-index",
      severity: "error",
      comment:
        "A tier may use another tier only through that tier's index.ts, never its internals.",
      from: { path: "^src/tiers/([^/]+)/" },
      to: {
        path: "^src/tiers/[^/]+/",
        pathNot: "^src/tiers/($1/|[^/]+/index\\.ts$)",
      },
    },
    {
      name: "lifecycle-talks-to-tiers-through-index",
      severity: "error",
      comment: "src/lifecycle behaves like a tier: it may use a tier only through its index.ts.",
      from: { path: "^src/lifecycle/" },
      to: {
        path: "^src/tiers/",
        pathNot: "^src/tiers/[^/]+/index\\.ts$",
      },
    },
    {
      name: "tiers-talk-to-lifecycle-through-index",
      severity: "error",
      comment: "A tier may use src/lifecycle only through src/lifecycle/index.ts.",
      from: { path: "^src/tiers/" },
      to: {
        path: "^src/lifecycle/",
        pathNot: "^src/lifecycle/index\\.ts$",
      },
    },
    {
      name: "no-root-imports",
      severity: "error",
      comment:
        "Root files (src/*.ts) compose the app; nothing below src/ (platform, tiers, lifecycle, " +
        "any other folder) may import them.",
      from: { path: "^src/[^/]+/", pathNot: "^src/client/" },
      to: { path: "^src/[^/]+\\.ts$" },
    },
    {
      name: "client-is-a-leaf",
      severity: "error",
      comment:
        "src/client is what apps install: the server never imports it, and it reaches the server " +
        "only through `import type` (its JavaScript must import nothing but @trpc/client).",
      from: { path: "^src/", pathNot: "^src/client/" },
      to: { path: "^src/client/" },
    },
    {
      name: "client-imports-server-types-only",
      severity: "error",
      comment: "The client's JavaScript runs in browsers and Node apps: server modules are type imports only.",
      from: { path: "^src/client/" },
      to: { path: "^src/", pathNot: "^src/client/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment:
        "A relative import that does not resolve to a file is an edge the rules above cannot " +
        "see (it would pass them silently), so it fails here too, not only in the type-check.",
      from: { path: "^src/" },
      to: { couldNotResolve: true, path: "^\\.{1,2}/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    parser: "swc",
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
