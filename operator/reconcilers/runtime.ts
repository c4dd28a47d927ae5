/**
 * @module operator/reconcilers — level-based, idempotent reconcilers (DESIGN.md §6) and the small runtime that
 * drives them: a de-duplicating work queue per controller, retries with exponential backoff for what may heal,
 * `TerminalError` for what retrying cannot fix, and a duration observer for `kubenova_reconcile_seconds`.
 */
import type { Logger } from "../../shared/logger.ts";

export interface ReconcileResult {
  /** Reconcile this key again after this long even if nothing changes (e.g. waiting for a controller). */
  requeueAfterMs?: number;
}

/** An error retrying cannot fix (invalid intent, refused by the API server); reported, not retried. */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TerminalError";
  }
}

export type ReconcileOutcome = "success" | "error" | "terminal";

export interface ControllerOptions {
  name: string;
  reconcile: (key: string) => Promise<ReconcileResult>;
  logger: Logger;
  backoff?: { initialMs: number; maxMs: number };
  /** Called after every reconcile, for metrics. */
  observe?: (controller: string, seconds: number, outcome: ReconcileOutcome) => void;
  /** Called when a key failed; `terminal` when it will not be retried. */
  onError?: (key: string, error: unknown, terminal: boolean) => void;
}

export interface Controller {
  enqueue(key: string, afterMs?: number): void;
  /** Resolves when the queue is empty and nothing is running (timers pending later do not count). */
  idle(): Promise<void>;
  stop(): void;
  stats(): { reconciles: number; errors: number; queued: number };
}

export function createController(options: ControllerOptions): Controller {
  const log = options.logger.child({ controller: options.name });
  const backoff = options.backoff ?? { initialMs: 200, maxMs: 60_000 };
  const queue: string[] = [];
  const queued = new Set<string>();
  const failures = new Map<string, number>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  let running = false;
  let stopped = false;
  let idleWaiters: Array<() => void> = [];
  const stats = { reconciles: 0, errors: 0 };

  function push(key: string): void {
    if (stopped || queued.has(key)) return;
    queued.add(key);
    queue.push(key);
    void drain();
  }

  async function drain(): Promise<void> {
    if (running) return;
    running = true;
    while (queue.length > 0 && !stopped) {
      const key = queue.shift()!;
      queued.delete(key);
      const started = performance.now();
      let outcome: ReconcileOutcome = "success";
      try {
        const result = await options.reconcile(key);
        failures.delete(key);
        if (result.requeueAfterMs !== undefined) enqueue(key, result.requeueAfterMs);
      } catch (error) {
        stats.errors++;
        const terminal = error instanceof TerminalError;
        outcome = terminal ? "terminal" : "error";
        options.onError?.(key, error, terminal);
        if (terminal) {
          log.warn("reconcile failed for good", { key, err: error as Error });
          failures.delete(key);
        } else {
          const attempt = (failures.get(key) ?? 0) + 1;
          failures.set(key, attempt);
          const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt - 1, 20));
          log.debug("reconcile failed; retrying", { key, attempt, delay_ms: delay, err: error as Error });
          enqueue(key, delay);
        }
      }
      stats.reconciles++;
      options.observe?.(options.name, (performance.now() - started) / 1000, outcome);
    }
    running = false;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function enqueue(key: string, afterMs = 0): void {
    if (stopped) return;
    if (afterMs <= 0) {
      push(key);
      return;
    }
    const existing = timers.get(key);
    if (existing) clearTimeout(existing);
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key);
        push(key);
      }, afterMs),
    );
  }

  return {
    enqueue,
    idle: () =>
      running || queue.length > 0
        ? new Promise<void>((resolve) => idleWaiters.push(resolve))
        : Promise.resolve(),
    stop() {
      stopped = true;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
    },
    stats: () => ({ ...stats, queued: queue.length }),
  };
}
