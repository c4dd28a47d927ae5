/**
 * The resource registry: built-in kinds the project uses plus the kinds served by stored CRDs, and the
 * discovery documents (`/api`, `/apis`, `/apis/{group}/{version}`) derived from it.
 */

import type { JSONSchemaProps } from "./schema.ts";

export interface ResourceType {
  group: string;
  /** Versions served; the first one is the preferred version. */
  versions: string[];
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  /** Subresources served, e.g. `status`, `token`. */
  subresources: string[];
  /** Structural schema per version, for custom resources only. */
  schemas?: Record<string, JSONSchemaProps | undefined>;
  /** True for kinds served from a CustomResourceDefinition. */
  custom: boolean;
  /** Bump `metadata.generation` when anything but metadata/status changes. */
  tracksGeneration: boolean;
}

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function builtin(
  group: string,
  version: string,
  resource: string,
  kind: string,
  namespaced: boolean,
  extra: { shortNames?: string[]; subresources?: string[]; tracksGeneration?: boolean } = {},
): ResourceType {
  return {
    group,
    versions: [version],
    resource,
    singular: kind.toLowerCase(),
    kind,
    listKind: `${kind}List`,
    namespaced,
    shortNames: extra.shortNames ?? [],
    subresources: extra.subresources ?? [],
    custom: false,
    tracksGeneration: extra.tracksGeneration ?? false,
  };
}

/** The built-in kinds the project touches (issue 3). Their bodies are stored as given, without schemas. */
export function builtinResources(): ResourceType[] {
  return [
    builtin("", "v1", "namespaces", "Namespace", false, {
      shortNames: ["ns"],
      subresources: ["status", "finalize"],
    }),
    builtin("", "v1", "serviceaccounts", "ServiceAccount", true, {
      shortNames: ["sa"],
      subresources: ["token"],
    }),
    builtin("", "v1", "secrets", "Secret", true),
    builtin("", "v1", "configmaps", "ConfigMap", true, { shortNames: ["cm"] }),
    builtin("", "v1", "pods", "Pod", true, { shortNames: ["po"], subresources: ["status"] }),
    builtin("", "v1", "services", "Service", true, { shortNames: ["svc"], subresources: ["status"] }),
    builtin("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, {
      shortNames: ["pvc"],
      subresources: ["status"],
    }),
    builtin("", "v1", "resourcequotas", "ResourceQuota", true, {
      shortNames: ["quota"],
      subresources: ["status"],
    }),
    builtin("", "v1", "limitranges", "LimitRange", true, { shortNames: ["limits"] }),
    builtin("", "v1", "events", "Event", true, { shortNames: ["ev"] }),
    builtin("", "v1", "nodes", "Node", false, { shortNames: ["no"], subresources: ["status"] }),
    builtin("apps", "v1", "deployments", "Deployment", true, {
      shortNames: ["deploy"],
      subresources: ["status"],
      tracksGeneration: true,
    }),
    builtin("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, {
      shortNames: ["netpol"],
      tracksGeneration: true,
    }),
    builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
    builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true),
    builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false),
    builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false),
    builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
    builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false, {
      shortNames: ["crd", "crds"],
      subresources: ["status"],
      tracksGeneration: true,
    }),
  ];
}

export interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: JSONSchemaProps };
  subresources?: { status?: unknown; scale?: unknown };
}

export interface CrdSpec {
  group: string;
  scope: "Namespaced" | "Cluster";
  names: { plural: string; singular?: string; kind: string; listKind?: string; shortNames?: string[] };
  versions: CrdVersion[];
}

/** The resource type a CustomResourceDefinition serves. The storage version is listed first. */
export function resourceFromCrd(spec: CrdSpec): ResourceType {
  const served = spec.versions.filter((v) => v.served !== false);
  // Discovery's preferred version is the highest-priority served version; storage first is close enough here.
  served.sort((a, b) => Number(b.storage === true) - Number(a.storage === true));
  const schemas: Record<string, JSONSchemaProps | undefined> = {};
  for (const v of served) schemas[v.name] = v.schema?.openAPIV3Schema;
  const hasStatus = served.some((v) => v.subresources?.status !== undefined);
  return {
    group: spec.group,
    versions: served.map((v) => v.name),
    resource: spec.names.plural,
    singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
    kind: spec.names.kind,
    listKind: spec.names.listKind ?? `${spec.names.kind}List`,
    namespaced: spec.scope === "Namespaced",
    shortNames: spec.names.shortNames ?? [],
    subresources: hasStatus ? ["status"] : [],
    schemas,
    custom: true,
    tracksGeneration: true,
  };
}

/** Lookup of resource types by group/version/resource and by apiVersion/kind. */
export class Registry {
  private readonly types = new Map<string, ResourceType>();

  constructor(initial: ResourceType[]) {
    for (const t of initial) this.add(t);
  }

  add(t: ResourceType): void {
    this.types.set(`${t.group}/${t.resource}`, t);
  }

  remove(group: string, resource: string): void {
    this.types.delete(`${group}/${resource}`);
  }

  all(): ResourceType[] {
    return [...this.types.values()];
  }

  byResource(group: string, version: string, resource: string): ResourceType | undefined {
    const t = this.types.get(`${group}/${resource}`);
    return t?.versions.includes(version) ? t : undefined;
  }

  byGroupResource(group: string, resource: string): ResourceType | undefined {
    return this.types.get(`${group}/${resource}`);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    const { group, version } = splitApiVersion(apiVersion);
    for (const t of this.types.values()) {
      if (t.group === group && t.kind === kind && t.versions.includes(version)) return t;
    }
    return undefined;
  }

  groups(): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    for (const t of this.types.values()) {
      if (t.group === "") continue;
      const versions = groups.get(t.group) ?? [];
      for (const v of t.versions) if (!versions.includes(v)) versions.push(v);
      groups.set(t.group, versions);
    }
    return groups;
  }

  /** `APIResourceList` for one group version, including subresources as real discovery lists them. */
  resourceList(group: string, version: string): Record<string, unknown> | undefined {
    const types = this.all().filter((t) => t.group === group && t.versions.includes(version));
    if (types.length === 0 && !(group === "" && version === "v1")) return undefined;
    const resources: Record<string, unknown>[] = [];
    for (const t of types.sort((a, b) => a.resource.localeCompare(b.resource))) {
      const entry: Record<string, unknown> = {
        name: t.resource,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ALL_VERBS,
      };
      if (t.shortNames.length > 0) entry.shortNames = t.shortNames;
      resources.push(entry);
      for (const sub of t.subresources) {
        if (sub === "token") {
          resources.push({
            name: `${t.resource}/token`,
            singularName: "",
            namespaced: t.namespaced,
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: ["create"],
          });
        } else {
          resources.push({
            name: `${t.resource}/${sub}`,
            singularName: "",
            namespaced: t.namespaced,
            kind: t.kind,
            verbs: sub === "finalize" ? ["update"] : ["get", "patch", "update"],
          });
        }
      }
    }
    return {
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: group === "" ? version : `${group}/${version}`,
      resources,
    };
  }

  apiGroup(group: string): Record<string, unknown> | undefined {
    const versions = this.groups().get(group);
    if (!versions) return undefined;
    const gv = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
    return { kind: "APIGroup", apiVersion: "v1", name: group, versions: gv, preferredVersion: gv[0] };
  }

  apiGroupList(): Record<string, unknown> {
    const groups = [...this.groups().keys()].sort().map((g) => {
      const { kind: _kind, apiVersion: _apiVersion, ...rest } = this.apiGroup(g)!;
      return rest;
    });
    return { kind: "APIGroupList", apiVersion: "v1", groups };
  }
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf("/");
  return i < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

export function apiVersionOf(group: string, version: string): string {
  return group === "" ? version : `${group}/${version}`;
}
