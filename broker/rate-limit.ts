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
  const nowMs = options.nowMs ?? (() => performance.now());
  const capacity = Math.max(1, options.burst ?? options.ratePerSecond);
  let tokens = capacity;
  let last = nowMs();
  return {
    take() {
      const now = nowMs();
      tokens = Math.min(capacity, tokens + ((now - last) / 1000) * options.ratePerSecond);
      last = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}
