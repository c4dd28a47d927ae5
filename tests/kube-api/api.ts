/**
 * The API semantics behind the HTTP routes: create/get/list/update/patch/apply/delete with the real server's
 * preconditions, status-subresource rules, generation, finalizers, namespace termination, ownerReference
 * garbage collection, CRD registration and TokenRequest. No authentication here; `http.ts` authorizes first.
 */

import { randomUUID } from "node:crypto";
import { parse as parseYaml } from "yaml";
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  invalid,
  notFound,
  type ResourceName,
  type StatusCause,
} from "./errors.ts";
import { applyJsonPatch, applyMergePatch } from "./patch.ts";
import type { Authenticator } from "./rbac.ts";
import { apiVersionOf, type CrdSpec, type Registry, type ResourceType, resourceFromCrd } from "./registry.ts";
import { deepEqualJson, pruneAndDefault, show, validate } from "./schema.ts";
import { parseFieldSelector, parseLabelSelector } from "./selectors.ts";
import { type ShapeInfo, serverSideApply, trackUpdate } from "./ssa.ts";
import type { KubeObject, ObjectMeta, Store } from "./store.ts";

export interface Target {
  type: ResourceType;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  fieldValidation?: string;
  force?: boolean;
}

export interface ListOptions {
  labelSelector?: string | null;
  fieldSelector?: string | null;
  limit?: number;
  continue?: string | null;
}

export interface DeleteOptions {
  propagationPolicy?: "Background" | "Foreground" | "Orphan";
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

export type PatchType = "merge" | "json" | "strategic" | "apply";

export const PATCH_TYPES: Record<string, PatchType> = {
  "application/merge-patch+json": "merge",
  "application/json-patch+json": "json",
  "application/strategic-merge-patch+json": "strategic",
  "application/apply-patch+yaml": "apply",
  "application/apply-patch+json": "apply",
};

export function tableOf(t: { group: string; resource: string }): string {
  return `${t.group}/${t.resource}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function nameCauses(t: ResourceType, name: string): StatusCause[] {
  if (t.kind === "Namespace") {
    if (name.length > 63 || !DNS_LABEL.test(name)) {
      return [
        {
          reason: "FieldValueInvalid",
          field: "metadata.name",
          message: `Invalid value: ${show(name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
        },
      ];
    }
    return [];
  }
  // RBAC objects accept any path-segment-safe name (e.g. "system:masters"); everything else is a DNS subdomain.
  if (t.group === "rbac.authorization.k8s.io") {
    return name.includes("/") || name.includes("%") || name === "." || name === ".."
      ? [
          {
            reason: "FieldValueInvalid",
            field: "metadata.name",
            message: `Invalid value: ${show(name)}: may not contain '/'`,
          },
        ]
      : [];
  }
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    return [
      {
        reason: "FieldValueInvalid",
        field: "metadata.name",
        message: `Invalid value: ${show(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
      },
    ];
  }
  return [];
}

/** Everything but metadata and (for kinds with a status subresource) status: what `generation` tracks. */
function specPart(obj: KubeObject, t: ResourceType): Record<string, unknown> {
  const { metadata: _m, status, apiVersion: _a, kind: _k, ...rest } = obj;
  return t.subresources.includes("status") ? rest : { ...rest, status };
}

export class ApiCore {
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private closed = false;
  /** Errors thrown by background work (GC, namespace termination); tests can assert it stays empty. */
  readonly backgroundErrors: unknown[] = [];

  constructor(
    readonly registry: Registry,
    readonly store: Store,
    readonly auth: Authenticator,
  ) {}

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Runs controller-like work asynchronously, as the real GC and namespace controllers do. */
  schedule(fn: () => void, delayMs = 0): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) return;
      try {
        fn();
      } catch (err) {
        this.backgroundErrors.push(err);
      }
    }, delayMs);
    this.timers.add(timer);
  }

  private names(t: ResourceType): ResourceName {
    return { group: t.group, resource: t.resource, kind: t.kind };
  }

  /** The object as served in `version` (custom resources are stored once; no conversion is emulated). */
  present(obj: KubeObject, t: ResourceType, version: string): KubeObject {
    obj.apiVersion = apiVersionOf(t.group, version);
    obj.kind = t.kind;
    return obj;
  }

  get(target: Target): KubeObject {
    const t = target.type;
    const obj = this.store.get(tableOf(t), target.namespace, target.name!);
    if (!obj) throw notFound(this.names(t), target.name!);
    return this.present(obj, t, target.version);
  }

  list(target: Target, options: ListOptions): Record<string, unknown> {
    const t = target.type;
    const labels = parseLabelSelector(options.labelSelector);
    const fields = parseFieldSelector(options.fieldSelector);
    let items = this.store
      .list(tableOf(t), target.namespace)
      .filter((o) => labels(o.metadata.labels) && fields(o.metadata));
    let startAfter = "";
    if (options.continue) {
      try {
        startAfter = (JSON.parse(Buffer.from(options.continue, "base64url").toString()) as { k: string }).k;
      } catch {
        throw badRequest("continue key is not valid");
      }
      items = items.filter((o) => `${o.metadata.namespace ?? ""}/${o.metadata.name}` > startAfter);
    }
    const metadata: Record<string, unknown> = { resourceVersion: String(this.store.currentRevision) };
    if (options.limit !== undefined && options.limit > 0 && items.length > options.limit) {
      const rest = items.length - options.limit;
      items = items.slice(0, options.limit);
      const last = items[items.length - 1]!;
      const k = `${last.metadata.namespace ?? ""}/${last.metadata.name}`;
      metadata.continue = Buffer.from(JSON.stringify({ k })).toString("base64url");
      metadata.remainingItemCount = rest;
    }
    return {
      apiVersion: apiVersionOf(t.group, target.version),
      kind: t.listKind,
      metadata,
      items: items.map((o) => {
        const p = this.present(o, t, target.version);
        if (t.custom) return p;
        // Built-in lists carry no per-item apiVersion/kind on a real server.
        const { apiVersion: _a, kind: _k, ...rest } = p;
        return rest;
      }),
    };
  }

  private decode(target: Target, body: unknown): KubeObject {
    const t = target.type;
    if (!isObject(body)) throw badRequest("the body of the request was not a JSON object");
    const expected = apiVersionOf(t.group, target.version);
    if (body.kind !== undefined && body.kind !== t.kind) {
      throw badRequest(
        `the kind in the data (${String(body.kind)}) does not match the expected kind (${t.kind})`,
      );
    }
    if (body.apiVersion !== undefined && body.apiVersion !== expected) {
      throw badRequest(
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${expected})`,
      );
    }
    const obj = structuredClone(body) as KubeObject;
    obj.apiVersion = expected;
    obj.kind = t.kind;
    if (!isObject(obj.metadata)) obj.metadata = {} as ObjectMeta;
    if (t.namespaced) {
      if (obj.metadata.namespace && obj.metadata.namespace !== target.namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      if (target.namespace) obj.metadata.namespace = target.namespace;
    } else {
      delete obj.metadata.namespace;
    }
    return obj;
  }

  /** Prune, default and validate custom resources; name checks for all kinds. Throws 422 / 400. */
  private admit(
    t: ResourceType,
    version: string,
    obj: KubeObject,
    options: WriteOptions,
  ): string | undefined {
    const causes = nameCauses(t, obj.metadata.name);
    const schema = t.schemas?.[version];
    let warning: string | undefined;
    if (schema) {
      const pruned = pruneAndDefault(obj as Record<string, unknown>, schema);
      if (pruned.length > 0 && options.fieldValidation === "Strict") {
        throw badRequest(`strict decoding error: ${pruned.map((p) => `unknown field "${p}"`).join(", ")}`);
      }
      if (pruned.length > 0 && options.fieldValidation === "Warn") {
        warning = pruned.map((p) => `unknown field "${p}"`).join(", ");
      }
      causes.push(...validate(obj, schema));
    }
    if (t.kind === "CustomResourceDefinition") causes.push(...crdCauses(obj));
    if (causes.length > 0) throw invalid(this.names(t), obj.metadata.name, causes);
    return warning;
  }

  private requireNamespace(t: ResourceType, namespace: string | undefined, name: string): void {
    if (!t.namespaced) return;
    const ns = this.store.get("/namespaces", undefined, namespace ?? "");
    if (!ns) throw notFound({ group: "", resource: "namespaces", kind: "Namespace" }, namespace ?? "");
    if (ns.metadata.deletionTimestamp) {
      throw new ApiError(
        "Forbidden",
        `${t.resource} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
        { group: t.group, kind: t.resource },
      );
    }
  }

  create(target: Target, body: unknown, options: WriteOptions, manager: string): KubeObject {
    const t = target.type;
    const obj = this.decode(target, body);
    const meta = obj.metadata;
    if (!meta.name && meta.generateName)
      meta.name = meta.generateName + randomUUID().replace(/-/g, "").slice(0, 5);
    if (!meta.name) {
      throw invalid(this.names(t), "", [
        {
          reason: "FieldValueRequired",
          field: "metadata.name",
          message: "Required value: name or generateName is required",
        },
      ]);
    }
    this.requireNamespace(t, target.namespace, meta.name);
    if (this.store.get(tableOf(t), meta.namespace, meta.name)) throw alreadyExists(this.names(t), meta.name);
    for (const k of [
      "uid",
      "resourceVersion",
      "creationTimestamp",
      "deletionTimestamp",
      "generation",
      "managedFields",
    ]) {
      delete meta[k];
    }
    if (t.subresources.includes("status") && t.kind !== "Namespace") delete obj.status;
    this.admit(t, target.version, obj, options);
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp();
    if (t.tracksGeneration) meta.generation = 1;
    applyBuiltinDefaults(obj);
    if (t.kind === "CustomResourceDefinition") setCrdStatus(obj);
    trackUpdate({
      live: undefined,
      next: obj as Record<string, unknown>,
      manager,
      apiVersion: obj.apiVersion,
      subresource: undefined,
      statusIsSubresource: t.subresources.includes("status"),
      shape: this.shape(t, target.version),
    });
    if (options.dryRun) return obj;
    const stored = this.store.put(tableOf(t), obj);
    if (t.kind === "CustomResourceDefinition") this.registerCrd(stored);
    return this.present(stored, t, target.version);
  }

  private shape(t: ResourceType, version: string): ShapeInfo {
    return { schema: t.custom ? t.schemas?.[version] : undefined };
  }

  update(target: Target, body: unknown, options: WriteOptions, manager: string): KubeObject {
    const t = target.type;
    const next = this.decode(target, body);
    if (next.metadata.name && next.metadata.name !== target.name) {
      throw badRequest(
        `the name of the object (${next.metadata.name}) does not match the name on the URL (${target.name})`,
      );
    }
    next.metadata.name = target.name!;
    const live = this.store.get(tableOf(t), target.namespace, target.name!);
    if (!live) throw notFound(this.names(t), target.name!);
    const rv = next.metadata.resourceVersion;
    if (rv === undefined || rv === "") {
      if (t.custom) {
        throw invalid(this.names(t), target.name!, [
          {
            reason: "FieldValueInvalid",
            field: "metadata.resourceVersion",
            message: "Invalid value: 0x0: must be specified for an update",
          },
        ]);
      }
    } else if (rv !== live.metadata.resourceVersion) {
      throw conflict(
        this.names(t),
        target.name!,
        "the object has been modified; please apply your changes to the latest version and try again",
      );
    }
    return this.commit(target, live, next, options, manager, false);
  }

  patch(target: Target, body: string, type: PatchType, options: WriteOptions, manager: string): KubeObject {
    const t = target.type;
    const live = this.store.get(tableOf(t), target.namespace, target.name!);
    if (type === "apply") return this.apply(target, live, body, options);
    if (!live) throw notFound(this.names(t), target.name!);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      throw badRequest(`error decoding patch: ${(err as Error).message}`);
    }
    const current = this.present(structuredClone(live), t, target.version);
    let patched: unknown;
    if (type === "json") patched = applyJsonPatch(current, parsed);
    else if (type === "strategic") {
      // Real custom resources do not support strategic merge patch; for built-ins it is applied as a
      // JSON merge patch here (no patchMergeKey/patchStrategy emulation).
      if (t.custom) {
        throw new ApiError(
          "UnsupportedMediaType",
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
        );
      }
      patched = applyMergePatch(current, parsed);
    } else patched = applyMergePatch(current, parsed);
    const next = this.decode(target, patched);
    if (next.metadata.name !== target.name) throw badRequest("metadata.name cannot be changed by a patch");
    const rv = next.metadata.resourceVersion;
    if (rv && rv !== live.metadata.resourceVersion) {
      throw conflict(
        this.names(t),
        target.name!,
        "the object has been modified; please apply your changes to the latest version and try again",
      );
    }
    return this.commit(target, live, next, options, manager, false);
  }

  private apply(
    target: Target,
    live: KubeObject | undefined,
    body: string,
    options: WriteOptions,
  ): KubeObject {
    const t = target.type;
    if (!options.fieldManager) {
      throw badRequest(
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
      );
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(body);
    } catch (err) {
      throw badRequest(`error decoding YAML: ${(err as Error).message}`);
    }
    if (!isObject(parsed) || !parsed.apiVersion || !parsed.kind) {
      throw badRequest("invalid object: apiVersion and kind must be set in an apply patch");
    }
    const applied = this.decode(target, parsed);
    if (applied.metadata.name && applied.metadata.name !== target.name) {
      throw badRequest(
        `the name of the object (${applied.metadata.name}) does not match the name on the URL (${target.name})`,
      );
    }
    applied.metadata.name = target.name!;
    const rv = applied.metadata.resourceVersion;
    if (live && rv && rv !== live.metadata.resourceVersion) {
      throw conflict(
        this.names(t),
        target.name!,
        "the object has been modified; please apply your changes to the latest version and try again",
      );
    }
    const subresource = target.subresource === "status" ? "status" : undefined;
    if (!live && subresource) throw notFound(this.names(t), target.name!);
    const statusIsSubresource = t.subresources.includes("status");
    const merged = serverSideApply({
      live: live
        ? (this.present(structuredClone(live), t, target.version) as Record<string, unknown>)
        : undefined,
      applied: applied as Record<string, unknown>,
      manager: options.fieldManager,
      force: options.force === true,
      apiVersion: applied.apiVersion,
      subresource,
      statusIsSubresource,
      shape: this.shape(t, target.version),
    }) as KubeObject;
    if (!live) {
      // Apply to a missing object creates it; the managedFields computed above are kept.
      const managed = merged.metadata.managedFields;
      this.requireNamespace(t, target.namespace, target.name!);
      if (statusIsSubresource && t.kind !== "Namespace") delete merged.status;
      this.admit(t, target.version, merged, options);
      merged.metadata.uid = randomUUID();
      merged.metadata.creationTimestamp = timestamp();
      if (t.tracksGeneration) merged.metadata.generation = 1;
      if (managed) merged.metadata.managedFields = managed;
      applyBuiltinDefaults(merged);
      if (t.kind === "CustomResourceDefinition") setCrdStatus(merged);
      if (options.dryRun) return merged;
      const stored = this.store.put(tableOf(t), merged);
      if (t.kind === "CustomResourceDefinition") this.registerCrd(stored);
      return this.present(stored, t, target.version);
    }
    return this.commit(target, live, merged, options, options.fieldManager, true);
  }

  /**
   * Common tail of update/patch/apply: status-subresource rules, immutable metadata, generation, managedFields,
   * validation, finalizer completion, and no write at all when nothing changed (no new resourceVersion, no event).
   */
  private commit(
    target: Target,
    live: KubeObject,
    candidate: KubeObject,
    options: WriteOptions,
    manager: string,
    managedAlreadyTracked: boolean,
  ): KubeObject {
    const t = target.type;
    const statusIsSubresource = t.subresources.includes("status");
    let next: KubeObject;
    if (target.subresource === "status") {
      next = structuredClone(live);
      next.status = candidate.status;
      if (managedAlreadyTracked) next.metadata.managedFields = candidate.metadata.managedFields;
    } else {
      next = candidate;
      if (statusIsSubresource && t.kind !== "Namespace") {
        if (live.status === undefined) delete next.status;
        else next.status = live.status;
      }
    }
    this.present(next, t, target.version);
    const meta = next.metadata;
    const liveMeta = live.metadata;
    meta.name = liveMeta.name;
    if (liveMeta.namespace) meta.namespace = liveMeta.namespace;
    meta.uid = liveMeta.uid;
    meta.creationTimestamp = liveMeta.creationTimestamp;
    meta.resourceVersion = liveMeta.resourceVersion;
    if (liveMeta.deletionTimestamp) meta.deletionTimestamp = liveMeta.deletionTimestamp;
    else delete meta.deletionTimestamp;
    if (liveMeta.generation !== undefined) meta.generation = liveMeta.generation;
    else delete meta.generation;
    if (!managedAlreadyTracked) {
      meta.managedFields = liveMeta.managedFields;
      if (meta.managedFields === undefined) delete meta.managedFields;
      trackUpdate({
        live: live as Record<string, unknown>,
        next: next as Record<string, unknown>,
        manager,
        apiVersion: next.apiVersion,
        subresource: target.subresource === "status" ? "status" : undefined,
        statusIsSubresource,
        shape: this.shape(t, target.version),
      });
    }
    this.admit(t, target.version, next, options);
    if (t.tracksGeneration && !deepEqualJson(specPart(next, t), specPart(live, t))) {
      meta.generation = (liveMeta.generation ?? 0) + 1;
    }
    if (t.kind === "CustomResourceDefinition" && target.subresource !== "status") setCrdStatus(next);
    if (deepEqualJson(next, live)) return this.present(live, t, target.version);
    if (options.dryRun) return next;
    if (meta.deletionTimestamp && (meta.finalizers ?? []).length === 0) {
      const gone = this.finalize(t, next);
      return this.present(gone, t, target.version);
    }
    const stored = this.store.put(tableOf(t), next);
    if (t.kind === "CustomResourceDefinition") this.registerCrd(stored);
    return this.present(stored, t, target.version);
  }

  /** Deletes, honouring preconditions and finalizers; returns the object when deletion is pending. */
  delete(target: Target, options: DeleteOptions): { object: KubeObject; pending: boolean } {
    const t = target.type;
    const live = this.store.get(tableOf(t), target.namespace, target.name!);
    if (!live) throw notFound(this.names(t), target.name!);
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== live.metadata.uid) {
      throw conflict(
        this.names(t),
        target.name!,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${live.metadata.uid}`,
      );
    }
    if (pre?.resourceVersion && pre.resourceVersion !== live.metadata.resourceVersion) {
      throw conflict(
        this.names(t),
        target.name!,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${live.metadata.resourceVersion}`,
      );
    }
    if (options.dryRun) return { object: this.present(live, t, target.version), pending: false };
    return this.deleteObject(t, live, options.propagationPolicy ?? "Background", target.version);
  }

  deleteObject(
    t: ResourceType,
    live: KubeObject,
    policy: "Background" | "Foreground" | "Orphan",
    version: string,
  ): { object: KubeObject; pending: boolean } {
    if (policy === "Orphan") this.orphanDependents(live.metadata.uid ?? "");
    if (t.kind === "Namespace") {
      if (!live.metadata.deletionTimestamp) {
        live.metadata.deletionTimestamp = timestamp();
        live.status = { ...(isObject(live.status) ? live.status : {}), phase: "Terminating" };
        live = this.store.put(tableOf(t), live);
      }
      const ns = live.metadata.name;
      this.schedule(() => this.sweepNamespace(ns));
      return { object: this.present(live, t, version), pending: true };
    }
    if ((live.metadata.finalizers ?? []).length > 0) {
      if (!live.metadata.deletionTimestamp) {
        live.metadata.deletionTimestamp = timestamp();
        live.metadata.deletionGracePeriodSeconds = 0;
        live = this.store.put(tableOf(t), live);
      }
      return { object: this.present(live, t, version), pending: true };
    }
    return { object: this.present(this.finalize(t, live), t, version), pending: false };
  }

  /** Removes the object for good, then lets the "controllers" react: GC, namespace sweep, CRD cleanup. */
  private finalize(t: ResourceType, obj: KubeObject): KubeObject {
    const gone = this.store.remove(tableOf(t), obj.metadata.namespace, obj.metadata.name) ?? obj;
    const uid = gone.metadata.uid ?? "";
    this.schedule(() => this.collectGarbage(uid));
    const ns = gone.metadata.namespace;
    if (ns && this.store.get("/namespaces", undefined, ns)?.metadata.deletionTimestamp) {
      this.schedule(() => this.sweepNamespace(ns));
    }
    if (t.kind === "CustomResourceDefinition") this.unregisterCrd(gone);
    return gone;
  }

  private orphanDependents(uid: string): void {
    for (const dep of this.store.dependentsOf(uid)) {
      dep.object.metadata.ownerReferences = dep.object.metadata.ownerReferences?.filter((r) => r.uid !== uid);
      if (dep.object.metadata.ownerReferences?.length === 0) delete dep.object.metadata.ownerReferences;
      this.store.put(dep.table, dep.object);
    }
  }

  /** Background propagation: a dependent whose owners are all gone is deleted; a dangling reference is dropped. */
  private collectGarbage(uid: string): void {
    for (const dep of this.store.dependentsOf(uid)) {
      const refs = dep.object.metadata.ownerReferences ?? [];
      const alive = refs.filter((r) => r.uid !== uid && this.store.findByUid(r.uid));
      const [group, resource] = dep.table.split("/") as [string, string];
      const type = this.registry.byGroupResource(group, resource);
      if (!type) continue;
      if (alive.length > 0) {
        dep.object.metadata.ownerReferences = refs.filter((r) => r.uid !== uid);
        this.store.put(dep.table, dep.object);
      } else if (!dep.object.metadata.deletionTimestamp) {
        this.deleteObject(type, dep.object, "Background", type.versions[0]!);
      }
    }
  }

  /** The namespace controller: delete everything in a terminating namespace, then the namespace itself. */
  private sweepNamespace(ns: string): void {
    const nsObj = this.store.get("/namespaces", undefined, ns);
    if (!nsObj?.metadata.deletionTimestamp) return;
    let remaining = 0;
    for (const type of this.registry.all()) {
      if (!type.namespaced) continue;
      for (const obj of this.store.list(tableOf(type), ns)) {
        remaining++;
        if (!obj.metadata.deletionTimestamp) this.deleteObject(type, obj, "Background", type.versions[0]!);
      }
    }
    if (remaining > 0) {
      // Objects without finalizers are gone now; objects with finalizers re-trigger the sweep when removed.
      const left = this.registry
        .all()
        .some((type) => type.namespaced && this.store.list(tableOf(type), ns).length > 0);
      if (left) return;
    }
    const spec = isObject(nsObj.spec) ? nsObj.spec : {};
    if (Array.isArray(spec.finalizers) && spec.finalizers.length > 0) {
      nsObj.spec = { ...spec, finalizers: [] };
      this.store.put("/namespaces", nsObj);
    }
    if ((nsObj.metadata.finalizers ?? []).length === 0) this.store.remove("/namespaces", undefined, ns);
  }

  private registerCrd(crd: KubeObject): void {
    const spec = crd.spec as CrdSpec;
    this.registry.add(resourceFromCrd(spec));
  }

  private unregisterCrd(crd: KubeObject): void {
    const spec = crd.spec as CrdSpec;
    const table = tableOf({ group: spec.group, resource: spec.names.plural });
    for (const obj of this.store.list(table))
      this.store.remove(table, obj.metadata.namespace, obj.metadata.name);
    this.registry.remove(spec.group, spec.names.plural);
  }

  deleteCollection(target: Target, list: ListOptions, options: DeleteOptions): Record<string, unknown> {
    const t = target.type;
    const result = this.list(target, list);
    const items = result.items as KubeObject[];
    const deleted: KubeObject[] = [];
    for (const item of items) {
      const live = this.store.get(tableOf(t), item.metadata.namespace, item.metadata.name);
      if (!live) continue;
      deleted.push(
        this.deleteObject(t, live, options.propagationPolicy ?? "Background", target.version).object,
      );
    }
    return { ...result, items: deleted };
  }

  /** `POST …/serviceaccounts/{name}/token` (TokenRequest). */
  createToken(target: Target, body: unknown): Record<string, unknown> {
    const sa = this.store.get("/serviceaccounts", target.namespace, target.name!);
    if (!sa) throw notFound({ group: "", resource: "serviceaccounts", kind: "ServiceAccount" }, target.name!);
    const spec = isObject(body) && isObject(body.spec) ? body.spec : {};
    const expirationSeconds = typeof spec.expirationSeconds === "number" ? spec.expirationSeconds : 3600;
    // DESIGN.md §9.7: TokenRequest rejects expirationSeconds below 600 (10 minutes).
    if (expirationSeconds < 600) {
      throw invalid(
        { group: "authentication.k8s.io", resource: "tokenrequests", kind: "TokenRequest" },
        target.name!,
        [
          {
            reason: "FieldValueInvalid",
            field: "spec.expirationSeconds",
            message: `Invalid value: ${expirationSeconds}: may not specify a duration less than 10 minutes`,
          },
        ],
      );
    }
    const audiences = Array.isArray(spec.audiences)
      ? (spec.audiences as string[])
      : ["https://kubernetes.default.svc.cluster.local"];
    const issued = this.auth.issue(sa, expirationSeconds, audiences);
    return {
      kind: "TokenRequest",
      apiVersion: "authentication.k8s.io/v1",
      metadata: { name: target.name, namespace: target.namespace, creationTimestamp: null },
      spec: { audiences, expirationSeconds, boundObjectRef: null },
      status: {
        token: issued.token,
        expirationTimestamp: issued.expiresAt.toISOString().replace(/\.\d+Z$/, "Z"),
      },
    };
  }

  /** Direct write for tests and simulated controllers: upsert without admission, still versioned and watched. */
  putDirect(obj: KubeObject): KubeObject {
    const t = this.registry.byKind(obj.apiVersion, obj.kind);
    if (!t) throw new Error(`no resource serves ${obj.apiVersion} ${obj.kind}`);
    const table = tableOf(t);
    const live = this.store.get(table, obj.metadata.namespace, obj.metadata.name);
    const next = structuredClone(obj);
    next.metadata.uid = live?.metadata.uid ?? next.metadata.uid ?? randomUUID();
    next.metadata.creationTimestamp =
      live?.metadata.creationTimestamp ?? next.metadata.creationTimestamp ?? timestamp();
    if (live) next.metadata.resourceVersion = live.metadata.resourceVersion;
    if (live && deepEqualJson(next, live)) return live;
    const stored = this.store.put(table, next);
    if (t.kind === "CustomResourceDefinition") this.registerCrd(stored);
    return stored;
  }
}

function crdCauses(obj: KubeObject): StatusCause[] {
  const spec = (isObject(obj.spec) ? obj.spec : {}) as Partial<CrdSpec>;
  const causes: StatusCause[] = [];
  if (!spec.group)
    causes.push({ reason: "FieldValueRequired", field: "spec.group", message: "Required value" });
  if (!spec.names?.plural)
    causes.push({ reason: "FieldValueRequired", field: "spec.names.plural", message: "Required value" });
  if (!spec.names?.kind)
    causes.push({ reason: "FieldValueRequired", field: "spec.names.kind", message: "Required value" });
  if (spec.scope !== "Namespaced" && spec.scope !== "Cluster") {
    causes.push({
      reason: "FieldValueNotSupported",
      field: "spec.scope",
      message: `Unsupported value: ${show(spec.scope ?? "")}: supported values: "Cluster", "Namespaced"`,
    });
  }
  if (spec.group && spec.names?.plural && obj.metadata.name !== `${spec.names.plural}.${spec.group}`) {
    causes.push({
      reason: "FieldValueInvalid",
      field: "metadata.name",
      message: `Invalid value: ${show(obj.metadata.name)}: must be spec.names.plural+"."+spec.group`,
    });
  }
  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.filter((v) => v.storage).length !== 1) {
    causes.push({
      reason: "FieldValueInvalid",
      field: "spec.versions",
      message: `Invalid value: ${show(versions.map((v) => v.name))}: must have exactly one version marked as storage version`,
    });
  }
  return causes;
}

/** What the apiextensions controller reports once names are accepted; it is immediate here. */
function setCrdStatus(obj: KubeObject): void {
  const spec = obj.spec as CrdSpec;
  const now = timestamp();
  const condition = (type: string, reason: string, message: string) => ({
    type,
    status: "True",
    lastTransitionTime: now,
    reason,
    message,
  });
  const previous = isObject(obj.status)
    ? (obj.status.conditions as { type: string }[] | undefined)
    : undefined;
  if (previous?.some((c) => c.type === "Established")) {
    obj.status = { ...(obj.status as Record<string, unknown>), acceptedNames: spec.names };
    return;
  }
  obj.status = {
    conditions: [
      condition("NamesAccepted", "NoConflicts", "no conflicts found for the names"),
      condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
    ],
    acceptedNames: spec.names,
    storedVersions: spec.versions.filter((v) => v.storage).map((v) => v.name),
  };
}

let nextClusterIp = 10;

/** Defaults real built-in strategies add that clients commonly read back. */
function applyBuiltinDefaults(obj: KubeObject): void {
  const spec = isObject(obj.spec) ? obj.spec : undefined;
  switch (obj.apiVersion === "v1" ? obj.kind : "") {
    case "Namespace":
      obj.metadata.labels = {
        ...(obj.metadata.labels ?? {}),
        "kubernetes.io/metadata.name": obj.metadata.name,
      };
      obj.spec = { finalizers: ["kubernetes"], ...(spec ?? {}) };
      obj.status = { phase: "Active" };
      break;
    case "Secret": {
      obj.type ??= "Opaque";
      // The real server folds write-only stringData into base64 data.
      if (isObject(obj.stringData)) {
        const data = { ...((isObject(obj.data) ? obj.data : {}) as Record<string, string>) };
        for (const [k, v] of Object.entries(obj.stringData))
          data[k] = Buffer.from(String(v)).toString("base64");
        obj.data = data;
        delete obj.stringData;
      }
      break;
    }
    case "Service":
      obj.spec = { type: "ClusterIP", sessionAffinity: "None", ...(spec ?? {}) };
      if (!(obj.spec as Record<string, unknown>).clusterIP) {
        nextClusterIp++;
        (obj.spec as Record<string, unknown>).clusterIP =
          `10.96.${Math.floor(nextClusterIp / 250) % 250}.${(nextClusterIp % 250) + 1}`;
      }
      obj.status = { loadBalancer: {} };
      break;
    case "Pod":
      obj.status = { phase: "Pending" };
      break;
    case "PersistentVolumeClaim":
      obj.status = { phase: "Pending" };
      break;
    default:
      break;
  }
}
