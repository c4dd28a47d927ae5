/**
 * `bun run kube-api`: starts an in-memory Kubernetes API server with the CRDs loaded, prints its URL and the
 * path of an admin kubeconfig (try `kubectl --kubeconfig <path> get tenants`), and serves until SIGINT.
 */

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startKubeApiServer } from "./server.ts";

const args = new Set(process.argv.slice(2));
const server = await startKubeApiServer({
  tls: args.has("--tls"),
  simulations: { capsule: args.has("--simulate"), kubevela: args.has("--simulate") },
});
const kubeconfigPath = path.join(mkdtempSync(path.join(tmpdir(), "kube-api-")), "kubeconfig");
server.writeKubeconfig(kubeconfigPath);
console.log(`kube-api listening on ${server.url}`);
console.log(`admin kubeconfig: ${kubeconfigPath}`);
console.log(`  export KUBECONFIG=${kubeconfigPath}; kubectl get crds`);
process.on("SIGINT", () => {
  void server.close().then(() => process.exit(0));
});
