/**
 * @module shared/env — reading environment variables with zod: the error every command reports (naming the
 * variable), the parser, and the schema building blocks the Manager's, the operator's and the broker's variables
 * share. Each command loads only its own variables (shared/config.ts, shared/operator-config.ts, broker/config.ts).
 */
import type { $ZodType } from "zod/v4/core";
import { z } from "./zod.ts";

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

export const bool = z.pipe(
  z.enum(["1", "0", "true", "false", "yes", "no", "on", "off", ""]),
  z.transform((value) => ["1", "true", "yes", "on"].includes(value)),
);

/** An integer from `min` to `max` read from its decimal text. */
export const integer = (min: number, max: number) =>
  z.coerce.number().check(z.int(), z.minimum(min), z.maximum(max));
export const port = integer(0, 65535);
export const text = z.string().check(z.minLength(1));
export const optionalText = z.optional(text);
export const textOr = (fallback: string) => z._default(text, fallback);

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export const logLevel = z._default(z.enum(LOG_LEVELS), "info");

/** Any zod schema (classic ones too: the broker's own variables are written in classic zod). */
export type EnvSpec = Record<string, { schema: $ZodType; doc: string }>;
export type Parsed<S extends EnvSpec> = { [K in keyof S]: z.output<S[K]["schema"]> };

/** Parses `env` against a spec; the first bad variable throws a ConfigError naming it. */
export function parseEnv<S extends EnvSpec>(spec: S, env: Record<string, string | undefined>): Parsed<S> {
  const out: Record<string, unknown> = {};
  for (const [name, { schema }] of Object.entries(spec)) {
    const raw = env[name];
    const result = z.safeParse(schema, raw === "" ? undefined : raw);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new ConfigError(name, `${issue?.message ?? "invalid value"} (got ${JSON.stringify(raw)})`);
    }
    out[name] = result.data;
  }
  return out as Parsed<S>;
}
