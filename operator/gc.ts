/**
 * A full garbage collection once a burst of reconciles has ended. JSC collects as the heap grows, but after a
 * burst (a snapshot, hundreds of tenants arriving) the operator goes quiet with the burst's garbage — response
 * bodies, parsed objects, status JSON — still on the heap, and RSS stays 5–7 MB above what it needs until
 * allocation resumes (measured with 125 tenants / 1,250 apps, docs/benchmarks.md). One synchronous collection of
 * a heap this size takes a few milliseconds.
 */

export interface BurstCollector {
  /** Call once per unit of work (a reconcile). */
  worked(): void;
  stop(): void;
}

export function createBurstCollector(options: {
  /** Bursts smaller than this are left to the runtime. */
  minWork: number;
  /** Quiet time after the last unit of work before collecting. */
  quietMs: number;
  collect?: () => void;
}): BurstCollector {
  const collect = options.collect ?? (() => Bun.gc(true));
  let work = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  return {
    worked() {
      work++;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        if (work < options.minWork) return;
        work = 0;
        collect();
      }, options.quietMs);
      // Never what keeps the process alive.
      (timer as { unref?: () => void }).unref?.();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
