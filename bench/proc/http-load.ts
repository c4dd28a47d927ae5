/**
 * @module bench/proc/http-load — an HTTP/1.1 load generator in the manner of wrk: `connections` keep-alive TCP
 * connections, each with one GET outstanding at a time over the given paths, for a bounded time and count;
 * reports requests/s and latency percentiles. Raw sockets rather than `fetch`: the response body is counted off
 * by its Content-Length and never copied, so the generator's own CPU and garbage (a `fetch` client allocating
 * every 17 KB body, and its GC pauses showing up as server latency) stay small next to the server's.
 */
import { childConfig, percentile, send, serveCommands } from "../lib.ts";

const config = childConfig<{ url: string; token: string }>();
const target = new URL(config.url);
const HEADER_END = Buffer.from("\r\n\r\n");

interface LoadCommand {
  paths: string[];
  connections: number;
  durationMs: number;
  maxRequests: number;
}

function requestBytes(path: string): Buffer {
  const auth = config.token ? `authorization: Bearer ${config.token}\r\n` : "";
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nhost: ${target.host}\r\n${auth}accept: application/json\r\n\r\n`,
  );
}

async function load(command: LoadCommand) {
  const requests = command.paths.map(requestBytes);
  const latencies: number[] = [];
  let errors = 0;
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + command.durationMs;

  const runConnection = (index: number) =>
    new Promise<void>((resolve, reject) => {
      let next = index;
      let started = 0;
      let header: Buffer | null = null; // a response head split across chunks
      let remaining = -1; // body bytes still to come; -1 while reading the head
      let status = 0;
      const issue = (socket: { write(data: Buffer): number; end(): void }) => {
        if (performance.now() >= deadline || issued >= command.maxRequests) {
          socket.end();
          return;
        }
        issued++;
        started = performance.now();
        socket.write(requests[next++ % requests.length]!);
      };
      const done = (socket: { write(data: Buffer): number; end(): void }) => {
        latencies.push(performance.now() - started);
        if (status !== 200) errors++;
        remaining = -1;
        issue(socket);
      };
      void Bun.connect({
        hostname: target.hostname,
        port: Number(target.port),
        socket: {
          open: (socket) => {
            socket.setNoDelay(true);
            issue(socket);
          },
          data: (socket, chunk) => {
            let data: Buffer = chunk;
            while (data.length > 0) {
              if (remaining < 0) {
                const buffer: Buffer = header ? Buffer.concat([header, data]) : data;
                const end = buffer.indexOf(HEADER_END);
                if (end < 0) {
                  header = Buffer.from(buffer);
                  return;
                }
                header = null;
                const head = buffer.toString("latin1", 0, end);
                status = Number(head.slice(9, 12));
                const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
                if (!length) {
                  errors++;
                  socket.end();
                  return;
                }
                remaining = Number(length[1]);
                data = buffer.subarray(end + HEADER_END.length);
                if (remaining === 0) done(socket);
                continue;
              }
              const take = Math.min(remaining, data.length);
              remaining -= take;
              data = data.subarray(take);
              if (remaining === 0) done(socket);
            }
          },
          close: () => resolve(),
          error: (_socket, error) => reject(error),
          connectError: (_socket, error) => reject(error),
        },
      });
    });

  await Promise.all(Array.from({ length: command.connections }, (_, c) => runConnection(c)));
  const seconds = (performance.now() - t0) / 1000;
  return {
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

send({ type: "ready", pid: process.pid });
await serveCommands(async (command) => load(command as unknown as LoadCommand));
