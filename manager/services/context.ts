/**
 * @module manager/services — the Manager's business rules. Route handlers authorize and validate; services
 * change state, inside one store transaction with the audit record and the change-log entries it implies.
 */
import type { Role } from "../../shared/api/models.ts";
import type { Logger } from "../../shared/logger.ts";
import type { AuditRow, Store, StoreTx } from "../store/store.ts";
import { uuidv7 } from "../../shared/ids.ts";

/** Who is acting, for audit records and authority checks. */
export interface Actor {
  subject: string;
  role: Role;
  tenant: string | null;
  project: string | null;
  requestId: string;
}

/** What the services need: built once in main.ts (or a test) and passed in. */
export interface ServiceDeps {
  store: Store;
  /** Envelope encryption for secrets at rest (manager/crypto). */
  secrets: {
    encrypt(plaintext: string, aad: string): Promise<string>;
    /** Opens a ciphertext sealed for `aad` (the operator install reads the stored kubeconfig). */
    decryptString(ciphertext: string, aad: string): Promise<string>;
  };
  clock: () => Date;
  logger: Logger;
}

export function nowIso(deps: Pick<ServiceDeps, "clock">): string {
  return deps.clock().toISOString();
}

export async function audit(
  tx: StoreTx,
  deps: Pick<ServiceDeps, "clock">,
  actor: Actor,
  entry: {
    action: string;
    resource: string;
    tenant?: string | null;
    details?: Record<string, unknown> | null;
  },
): Promise<void> {
  const row: AuditRow = {
    id: uuidv7(),
    at: nowIso(deps),
    actor: actor.subject,
    role: actor.role,
    action: entry.action,
    resource: entry.resource,
    tenant: entry.tenant ?? null,
    requestId: actor.requestId,
    details: entry.details ?? null,
  };
  await tx.audit.insert(row);
}

/** Reads every page of a list; for internal fan-out where the set is bounded by the caller's data. */
export async function listAll<T>(
  fetch: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetch(cursor);
    out.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return out;
}
