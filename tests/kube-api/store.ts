/**
 * In-memory object storage with one global, increasing resourceVersion (like etcd's revision) and a bounded
 * history of change events that watches resume from; a watch from a version older than the history is Gone.
 */

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: unknown[];
  generateName?: string;
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoredEvent {
  type: EventType;
  /** `group/resource` of the object. */
  table: string;
  object: KubeObject;
  /** The object before a MODIFIED change, so selector-filtered watches can turn it into ADDED/DELETED. */
  previous?: KubeObject;
  resourceVersion: number;
}

export interface StoreListener {
  table: string;
  onEvent(event: StoredEvent): void;
}

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ""}/${name}`;
}

export class Store {
  private revision: number;
  private readonly tables = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoredEvent[] = [];
  /** Highest revision no longer in `history`; a watch starting before it gets 410 Gone. */
  private compactedRevision: number;
  private readonly listeners = new Set<StoreListener>();
  private readonly historySize: number;

  constructor(options: { historySize: number; startRevision?: number }) {
    this.historySize = options.historySize;
    this.revision = options.startRevision ?? 1000;
    this.compactedRevision = this.revision;
  }

  get currentRevision(): number {
    return this.revision;
  }

  get oldestWatchableRevision(): number {
    return this.compactedRevision;
  }

  get(table: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.tables.get(table)?.get(key(namespace, name));
    return obj ? structuredClone(obj) : undefined;
  }

  /** Objects sorted by namespace then name (etcd key order); all namespaces when `namespace` is undefined. */
  list(table: string, namespace?: string): KubeObject[] {
    const t = this.tables.get(table);
    if (!t) return [];
    const out: KubeObject[] = [];
    for (const [k, obj] of [...t.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      if (namespace !== undefined && !k.startsWith(`${namespace}/`)) continue;
      out.push(structuredClone(obj));
    }
    return out;
  }

  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  /** Stores `obj` under a new resourceVersion and emits ADDED or MODIFIED; returns the stored copy. */
  put(table: string, obj: KubeObject): KubeObject {
    let t = this.tables.get(table);
    if (!t) {
      t = new Map();
      this.tables.set(table, t);
    }
    const k = key(obj.metadata.namespace, obj.metadata.name);
    const previous = t.get(k);
    const type: EventType = previous ? "MODIFIED" : "ADDED";
    this.revision++;
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(this.revision);
    t.set(k, stored);
    const event: StoredEvent = { type, table, object: stored, resourceVersion: this.revision };
    if (previous) event.previous = previous;
    this.record(event);
    return structuredClone(stored);
  }

  /** Removes the object and emits DELETED carrying the deletion's resourceVersion. */
  remove(table: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const t = this.tables.get(table);
    const k = key(namespace, name);
    const obj = t?.get(k);
    if (!t || !obj) return undefined;
    t.delete(k);
    this.revision++;
    const gone = structuredClone(obj);
    gone.metadata.resourceVersion = String(this.revision);
    this.record({ type: "DELETED", table, object: gone, resourceVersion: this.revision });
    return structuredClone(gone);
  }

  private record(event: StoredEvent): void {
    this.history.push(event);
    while (this.history.length > this.historySize) {
      const dropped = this.history.shift()!;
      this.compactedRevision = dropped.resourceVersion;
    }
    for (const l of this.listeners) {
      if (l.table === event.table) l.onEvent(event);
    }
  }

  /** Events of one table after `revision`, or `"gone"` when that revision was compacted away. */
  eventsSince(table: string, revision: number): StoredEvent[] | "gone" {
    if (revision < this.compactedRevision) return "gone";
    return this.history.filter((e) => e.table === table && e.resourceVersion > revision);
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Uid lookup across all tables, for ownerReference garbage collection. */
  findByUid(uid: string): { table: string; object: KubeObject } | undefined {
    for (const [table, t] of this.tables) {
      for (const obj of t.values())
        if (obj.metadata.uid === uid) return { table, object: structuredClone(obj) };
    }
    return undefined;
  }

  /** Objects (any table) with an ownerReference to `uid`. */
  dependentsOf(uid: string): { table: string; object: KubeObject }[] {
    const out: { table: string; object: KubeObject }[] = [];
    for (const [table, t] of this.tables) {
      for (const obj of t.values()) {
        if (obj.metadata.ownerReferences?.some((r) => r.uid === uid))
          out.push({ table, object: structuredClone(obj) });
      }
    }
    return out;
  }
}
