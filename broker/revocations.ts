/**
 * @module broker/revocations — the revocation list of a standalone broker: a JSON file
 * `{ "revokedClusterIds": [...] }` that the Manager writes (DESIGN.md §4: deleting a cluster revokes it at once).
 * Watched for changes (fs.watch on its folder, so atomic rename-into-place is seen) with a polling fallback.
 */
import { type FSWatcher, watch } from "node:fs";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { z } from "zod";
import type { Logger } from "../shared/logger.ts";

export const RevocationFileSchema = z.object({ revokedClusterIds: z.array(z.string().min(1)) });
export type RevocationFile = z.infer<typeof RevocationFileSchema>;

export interface RevocationWatcher {
  has(clusterId: string): boolean;
  close(): void;
}

/**
 * Loads the file once (a missing file means nothing is revoked yet) and calls `onRevoked` with every id that
 * appears later. A file that does not parse keeps the previous list and is logged; it never stops the broker.
 */
export async function watchRevocationFile(options: {
  path: string;
  logger: Logger;
  onRevoked(clusterId: string): void;
  pollIntervalMs?: number;
}): Promise<RevocationWatcher> {
  const log = options.logger.child({ adapter: "revocations" });
  let revoked = new Set<string>();
  let signature = "";
  let reading: Promise<void> = Promise.resolve();

  async function load(): Promise<void> {
    let next: Set<string>;
    try {
      const info = await stat(options.path);
      const current = `${info.ino}:${info.size}:${info.mtimeMs}`;
      if (current === signature) return;
      signature = current;
      const parsed = RevocationFileSchema.safeParse(JSON.parse(await readFile(options.path, "utf8")));
      if (!parsed.success) {
        log.error("revocation file is invalid; keeping the previous list", {
          path: options.path,
          error: parsed.error.issues[0]?.message,
        });
        return;
      }
      next = new Set(parsed.data.revokedClusterIds);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ENOENT") {
        if (signature !== "missing")
          log.warn("revocation file not found; nothing revoked", { path: options.path });
        signature = "missing";
        return;
      }
      // A half-written file (non-atomic writer) parses next time round.
      signature = "";
      log.error("revocation file unreadable; keeping the previous list", { path: options.path, error });
      return;
    }
    const added = [...next].filter((id) => !revoked.has(id));
    // Ids never leave the effective list: the broker keeps refusing a revoked cluster until it restarts.
    revoked = new Set([...revoked, ...next]);
    if (added.length > 0) log.info("revocations loaded", { path: options.path, added: added.length });
    for (const id of added) options.onRevoked(id);
  }

  const refresh = () => {
    reading = reading.then(load, load);
    return reading;
  };
  await refresh();

  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(options.path), (_event, filename) => {
      if (filename === null || filename === basename(options.path)) void refresh();
    });
    watcher.on("error", (error) => log.warn("revocation watch failed; polling only", { error }));
  } catch (error) {
    log.warn("revocation watch unavailable; polling only", { path: options.path, error });
  }
  const poll = setInterval(() => void refresh(), options.pollIntervalMs ?? 2000);
  poll.unref?.();

  return {
    has: (clusterId) => revoked.has(clusterId),
    close() {
      clearInterval(poll);
      watcher?.close();
    },
  };
}

/** For the Manager: replaces the file atomically (write, then rename) so the broker never reads half a list. */
export async function writeRevocationFile(path: string, revokedClusterIds: Iterable<string>): Promise<void> {
  const body: RevocationFile = { revokedClusterIds: [...new Set(revokedClusterIds)].sort() };
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}
