/**
 * @module operator/mqtt-deps — mqtt.js loads two dependencies for runtimes that lack what Bun has; the operator
 * hands it Bun's instead (~2.5 MB of its idle RSS together; docs/benchmarks.md "Operator memory"):
 * - `readable-stream`, a copy of Node's streams: its own switch `READABLE_STREAM=disable` (lib/ours/index.js) makes
 *   it hand out node:stream, which node:tls loads anyway. A value set in the environment is kept.
 * - `worker-timers` (with @babel/runtime and a worker broker): timers run in a web worker, which mqtt.js uses only
 *   inside a browser's web worker (lib/get-timer.js); anywhere else it calls the global timers. The same functions
 *   are handed out, without the worker machinery.
 * `kubenova operator` runs this before importing operator/main.ts: Bun runs a CommonJS dependency when the importing
 * graph is loaded, before any ES module body of it, so it cannot go inside that graph.
 */
process.env.READABLE_STREAM ??= "disable";

Bun.plugin({
  name: "kubenova-operator-mqtt-deps",
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]worker-timers[\\/]build[\\/]/ }, () => ({
      loader: "object",
      exports: {
        setInterval: globalThis.setInterval,
        clearInterval: globalThis.clearInterval,
        setTimeout: globalThis.setTimeout,
        clearTimeout: globalThis.clearTimeout,
      },
    }));
  },
});

export {};
