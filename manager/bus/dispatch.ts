/**
 * @module manager/bus/dispatch — per-subscription delivery queue shared by both bus implementations: handlers run
 * one at a time in arrival order, failures are logged, and a bounded backlog sheds load instead of growing
 * without limit (the broker may lose anything, DESIGN.md §3; reports are redelivered from the operator outbox).
 */
import type { Logger } from "../../shared/logger.ts";
import type { BusHandler } from "./bus.ts";

export interface Dispatcher {
  push(topic: string, payload: Uint8Array): void;
  /** Resolves when everything pushed so far has been handled. */
  drained(): Promise<void>;
  stop(): void;
  readonly dropped: number;
}

export function createDispatcher(options: {
  filter: string;
  handler: BusHandler;
  logger: Logger;
  maxPending?: number;
}): Dispatcher {
  const maxPending = options.maxPending ?? 10_000;
  const queue: Array<{ topic: string; payload: Uint8Array }> = [];
  let running = false;
  let stopped = false;
  let dropped = 0;
  let idle: Array<() => void> = [];

  async function run(): Promise<void> {
    running = true;
    while (queue.length > 0 && !stopped) {
      const message = queue.shift()!;
      try {
        await options.handler(message.topic, message.payload);
      } catch (error) {
        options.logger.error("bus handler failed", { filter: options.filter, topic: message.topic, error });
      }
    }
    running = false;
    const waiters = idle;
    idle = [];
    for (const resolve of waiters) resolve();
  }

  return {
    push(topic, payload) {
      if (stopped) return;
      if (queue.length >= maxPending) {
        dropped++;
        if (dropped === 1 || dropped % 1000 === 0) {
          options.logger.warn("bus backlog full, dropping messages", { filter: options.filter, dropped });
        }
        return;
      }
      queue.push({ topic, payload });
      if (!running) void run();
    },
    drained() {
      if (!running && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
    stop() {
      stopped = true;
      queue.length = 0;
    },
    get dropped() {
      return dropped;
    },
  };
}
