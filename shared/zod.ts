/**
 * @module shared/zod — the zod the contracts between processes (shared/messages.ts, shared/config.ts) are written
 * in: `zod/mini`, the same checks and messages as classic zod built from far fewer objects. The operator loads no
 * classic zod at all (~4 MB of its idle RSS; docs/benchmarks.md "Operator memory"). Classic zod installs its
 * English messages when its first schema is made; zod/mini does not, so this does — `KN-4xx` errors and rejected
 * payloads keep saying what is wrong, not "Invalid input".
 */
import * as z from "zod/mini";

z.config(z.locales.en());

export { z };
