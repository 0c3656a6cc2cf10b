// Bindings the worker tests see: the Worker's own plus the local stack's control URLs.
/// <reference types="@cloudflare/vitest-plugin/types" />
declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import("../../src/index");
  }
  interface Env {
    JWT_SECRET: string;
    OLTP_DATABASE_URL: string;
    NOTIFICATIONS_DATABASE_URL: string;
    OLAP_DATABASE_URL: string;
    UPSTASH_REDIS_REST_URL: string;
    UPSTASH_REDIS_REST_TOKEN: string;
    NEON_LOCAL_FETCH_ENDPOINT: string;
    NEON_LOCAL_WS_PROXY: string;
    CONTENT_BUCKET: R2Bucket;
    JOBS_HIGH: Queue;
    JOBS_NORMAL: Queue;
    JOBS_LOW: Queue;
    TEST_NEON_CONTROL_URL: string;
    TEST_UPSTASH_CONTROL_URL: string;
    TEST_PROVIDERS_CONTROL_URL: string;
    TEST_TELEMETRY_CONTROL_URL: string;
    TEST_OTEL_EXPORTER_URL: string;
    DOH_RESOLVER_URL: string;
    TEST_PUSH_SERVICE_URL: string;
    VAPID_PUBLIC_KEY: string;
  }
}
