/** Loading CustomResourceDefinition YAML, parsed once per process and per file (later servers start fast). */

import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "./store.ts";

const cache = new Map<string, KubeObject[]>();

function yamlFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries.sort()) {
    const full = path.join(dir, e);
    if (statSync(full).isDirectory()) out.push(...yamlFiles(full));
    else if (/\.ya?ml$/.test(e)) out.push(full);
  }
  return out;
}

/** Every CustomResourceDefinition document in the YAML files under `dirs` (recursively). */
export function loadCrds(dirs: string[]): KubeObject[] {
  const crds: KubeObject[] = [];
  for (const dir of dirs) {
    for (const file of yamlFiles(dir)) {
      let docs = cache.get(file);
      if (!docs) {
        docs = parseAllDocuments(readFileSync(file, "utf8"))
          .map((d) => d.toJS() as KubeObject | null)
          .filter((d): d is KubeObject => d?.kind === "CustomResourceDefinition");
        cache.set(file, docs);
      }
      crds.push(...docs.map((d) => structuredClone(d)));
    }
  }
  return crds;
}

/** `../shared/crds` (third-party CRDs) and `charts/operator/crds` (KubeNova's own), relative to the repo. */
export function defaultCrdDirs(): string[] {
  const repo = path.resolve(import.meta.dir, "../..");
  return [path.resolve(repo, "../shared/crds"), path.resolve(repo, "charts/operator/crds")];
}
