/** @module bench/measures — the benchmark names; each is `bench/<name>.ts`. */
export const MEASURES = [
  "reports",
  "connections",
  "reconnect",
  "fanout",
  "api",
  "e2e-latency",
  "operator-memory",
  "scaling",
] as const;
