/**
 * A loopback TCP proxy that makes a link lossy the way TCP shows loss to an application: every chunk is delayed
 * (order kept), and now and then the stream stalls for a while — what retransmissions after dropped segments
 * look like from above. Bytes are never altered. Partitions: `blackhole()` holds every byte until `heal()`
 * (connections stay open, as across a dropped route), `reset()` resets connections and refuses new ones.
 */
import { createServer, type Server, type Socket, connect } from "node:net";

export interface LossyProxy {
  port: number;
  cut(): void;
  /** Partition, silent: connections stay open but no byte crosses (like a dropped route). */
  blackhole(): void;
  /** Partition, loud: every connection is reset and new ones are refused until `heal()`. */
  reset(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startLossyProxy(options: {
  targetPort: number;
  delayMs: () => number;
  /** Probability per chunk of a stall, and its length. */
  stallChance: number;
  stallMs: number;
}): Promise<LossyProxy> {
  const sockets = new Set<Socket>();
  let mode: "open" | "blackhole" | "reset" = "open";
  // During a black-hole bytes wait, as TCP retransmissions would, and flow again on heal (order kept).
  let healed: Promise<void> = Promise.resolve();
  let release: () => void = () => {};
  const pipe = (from: Socket, to: Socket) => {
    let chain = Promise.resolve();
    from.on("data", (chunk) => {
      const wait = options.delayMs() + (Math.random() < options.stallChance ? options.stallMs : 0);
      chain = chain
        .then(() => healed)
        .then(
          () =>
            new Promise<void>((resolve) =>
              setTimeout(() => {
                if (!to.destroyed) to.write(chunk);
                resolve();
              }, wait),
            ),
        );
    });
    from.on("close", () => {
      void chain.then(() => to.destroy());
    });
    from.on("error", () => to.destroy());
  };
  const server: Server = createServer((client) => {
    if (mode === "reset") {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(options.targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    client.on("close", () => sockets.delete(client));
    upstream.on("close", () => sockets.delete(upstream));
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      for (const socket of sockets) socket.destroy();
    },
    blackhole() {
      if (mode === "blackhole") return;
      mode = "blackhole";
      healed = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    reset() {
      mode = "reset";
      for (const socket of sockets) socket.resetAndDestroy();
    },
    heal() {
      mode = "open";
      release();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
