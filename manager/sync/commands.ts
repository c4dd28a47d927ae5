/**
 * Request/response over MQTT (DESIGN.md §3 `commands`/`replies`): a command carries a correlation id and a
 * deadline; the reply resolves the waiting API call, a timeout answers it with KN-504, and an offline cluster is
 * refused at once with KN-503 saying which cluster and since when.
 */
import { ERROR_CODES, type ErrorCode, KubeNovaError } from "../../shared/errors.ts";
import { uuidv7 } from "../../shared/ids.ts";
import type { Logger } from "../../shared/logger.ts";
import { type COMMAND_NAMES, makeEnvelope, type ReplyBody } from "../../shared/messages.ts";
import { topicFor } from "../../shared/topics.ts";
import type { Bus } from "../bus/bus.ts";

export type CommandName = (typeof COMMAND_NAMES)[number];

export interface CommandClient {
  /** Sends a command and waits for its reply; throws KN-503 (offline), KN-504 (deadline) or the reply's error. */
  request(
    cluster: { id: string; name: string },
    name: CommandName,
    args: Record<string, unknown>,
    options?: { timeoutMs?: number; traceparent?: string },
  ): Promise<Record<string, unknown>>;
  /** Called by ingest for every reply; unknown or late correlation ids are ignored (and counted). */
  resolve(clusterId: string, reply: ReplyBody): void;
  pending(): number;
  readonly lateReplies: number;
}

interface Waiter {
  clusterId: string;
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export function createCommandClient(options: {
  bus: Bus;
  logger: Logger;
  /** Whether the cluster can take a command now, and since when it cannot. */
  availability: (clusterId: string) => { online: boolean; since: string | null };
  defaultTimeoutMs?: number;
  clock?: () => Date;
}): CommandClient {
  const clock = options.clock ?? (() => new Date());
  const waiters = new Map<string, Waiter>();
  let lateReplies = 0;

  return {
    async request(cluster, name, args, requestOptions = {}) {
      const availability = options.availability(cluster.id);
      if (!availability.online) {
        throw new KubeNovaError(
          "KN-503",
          `cluster "${cluster.name}" is not connected${availability.since ? ` (since ${availability.since})` : ""}`,
          { context: { cluster: cluster.name, since: availability.since } },
        );
      }
      const timeoutMs = requestOptions.timeoutMs ?? options.defaultTimeoutMs ?? 10_000;
      const correlationId = uuidv7();
      const deadline = new Date(clock().getTime() + timeoutMs).toISOString();
      const envelope = makeEnvelope({
        id: uuidv7(),
        kind: "command",
        clusterId: cluster.id,
        body: { correlationId, name, deadline, args },
        ...(requestOptions.traceparent ? { traceparent: requestOptions.traceparent } : {}),
      });
      const result = new Promise<Record<string, unknown>>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(correlationId);
          reject(
            new KubeNovaError(
              "KN-504",
              `cluster "${cluster.name}" did not answer ${name} within ${timeoutMs} ms`,
              {
                context: { cluster: cluster.name, command: name },
              },
            ),
          );
        }, timeoutMs);
        waiters.set(correlationId, { clusterId: cluster.id, resolve, reject, timer });
      });
      try {
        await options.bus.publish(topicFor(cluster.id, "commands"), JSON.stringify(envelope), { qos: 1 });
      } catch (error) {
        const waiter = waiters.get(correlationId);
        if (waiter) {
          clearTimeout(waiter.timer);
          waiters.delete(correlationId);
        }
        throw new KubeNovaError("KN-503", `could not send ${name} to cluster "${cluster.name}"`, {
          cause: error,
        });
      }
      return result;
    },
    resolve(clusterId, reply) {
      const waiter = waiters.get(reply.correlationId);
      // A reply from another cluster for this id would be forged: ignore it like a late one.
      if (!waiter || waiter.clusterId !== clusterId) {
        lateReplies++;
        options.logger.debug("reply without a waiter", {
          cluster: clusterId,
          correlation_id: reply.correlationId,
        });
        return;
      }
      clearTimeout(waiter.timer);
      waiters.delete(reply.correlationId);
      if (reply.ok) {
        waiter.resolve(reply.result ?? {});
        return;
      }
      const code = (
        reply.error?.code && reply.error.code in ERROR_CODES ? reply.error.code : "KN-500"
      ) as ErrorCode;
      waiter.reject(new KubeNovaError(code, reply.error?.message ?? "the operator reported a failure"));
    },
    pending: () => waiters.size,
    get lateReplies() {
      return lateReplies;
    },
  };
}
