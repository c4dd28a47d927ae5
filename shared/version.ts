/** The KubeNova version, from package.json (embedded at build time by `bun build --compile`). */
import pkg from "../package.json" with { type: "json" };

export const KUBENOVA_VERSION: string = pkg.version;
