/**
 * @module broker/rate-limit — a token bucket per connection (DESIGN.md §3: oversize and abusive traffic is
 * refused, counted and logged, never allowed to starve the broker).
 */

export interface TokenBucket {
  /** Takes one token; false when the bucket is empty (the publish is dropped). */
  take(): boolean;
}

/**
 * `ratePerSecond` tokens refill continuously up to `burst` (default: one second's worth), so a connection may
 * sustain the configured rate and absorb a short burst (an operator flushing its outbox after reconnect).
 */
export function createTokenBucket(options: {
  ratePerSecond: number;
  burst?: number;
  nowMs?: () => number;
}): TokenBucket {
  return new Bucket(
    options.ratePerSecond,
    Math.max(1, options.burst ?? options.ratePerSecond),
    options.nowMs ?? performanceNow,
  );
}

const performanceNow = () => performance.now();

/** Plain fields and shared methods: the broker keeps one per connection, closures would cost more per client. */
class Bucket implements TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly capacity: number,
    private readonly nowMs: () => number,
  ) {
    this.tokens = capacity;
    this.last = nowMs();
  }

  take(): boolean {
    const now = this.nowMs();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
