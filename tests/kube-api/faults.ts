/** Fault injection: fail the next N requests, add latency, drop open watch streams. */

import { ApiError } from "./errors.ts";

export class Faults {
  /** Added to every request before it is handled. */
  latencyMs = 0;
  private failures: { status: 500 | 429 }[] = [];
  private readonly watchClosers = new Set<() => void>();

  /** The next `n` requests fail with `status` (429 carries `Retry-After: 1`). */
  failNext(n: number, status: 500 | 429 = 500): void {
    for (let i = 0; i < n; i++) this.failures.push({ status });
  }

  /** Closes every open watch stream, as when an apiserver restarts or a proxy cuts connections. */
  dropWatches(): void {
    for (const close of [...this.watchClosers]) close();
  }

  get openWatches(): number {
    return this.watchClosers.size;
  }

  /** @internal the HTTP layer registers each watch's close function. */
  trackWatch(close: () => void): () => void {
    this.watchClosers.add(close);
    return () => this.watchClosers.delete(close);
  }

  /** @internal the injected failure for this request, if any. */
  takeFailure(): ApiError | undefined {
    const f = this.failures.shift();
    if (!f) return undefined;
    if (f.status === 429) {
      return new ApiError(
        "TooManyRequests",
        "injected fault: the server has received too many requests and has asked us to try again later",
        {
          retryAfterSeconds: 1,
        },
      );
    }
    return new ApiError(
      "InternalError",
      "injected fault: an error on the server has prevented the request from succeeding",
      {
        causes: [{ reason: "UnexpectedServerResponse", message: "injected by faults.failNext" }],
      },
    );
  }
}
