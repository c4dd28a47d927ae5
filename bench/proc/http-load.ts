/**
 * @module bench/proc/http-load — an HTTP load generator: `connections` concurrent keep-alive loops of GETs over
 * the given paths for a bounded time and count; reports requests/s and latency percentiles.
 */
import { childConfig, percentile, send, serveCommands } from "../lib.ts";

const config = childConfig<{ url: string; token: string }>();
send({ type: "ready", pid: process.pid });
await serveCommands(async (command) => {
  const { paths, connections, durationMs, maxRequests } = command as {
    paths: string[];
    connections: number;
    durationMs: number;
    maxRequests: number;
  };
  const headers = config.token ? { authorization: `Bearer ${config.token}` } : undefined;
  const latencies: number[] = [];
  let errors = 0;
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  await Promise.all(
    Array.from({ length: connections }, async (_, c) => {
      let i = c;
      while (performance.now() < deadline && issued < maxRequests) {
        issued++;
        const start = performance.now();
        const res = await fetch(`${config.url}${paths[i++ % paths.length]}`, headers ? { headers } : {});
        await res.arrayBuffer();
        if (res.status !== 200) errors++;
        latencies.push(performance.now() - start);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
});
