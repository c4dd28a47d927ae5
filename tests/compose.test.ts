/**
 * compose.yaml cannot be run here (no Docker engine); this keeps it honest: every service has a healthcheck, the
 * Manager waits for a healthy Postgres, its variables are ones the Manager knows, and its ports match.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { parse } from "yaml";
import { MANAGER_ENV } from "../shared/config.ts";

const compose = parse(await Bun.file(join(import.meta.dir, "..", "compose.yaml")).text()) as {
  services: Record<
    string,
    {
      healthcheck?: unknown;
      environment?: Record<string, string>;
      depends_on?: Record<string, { condition: string }>;
      ports?: string[];
    }
  >;
};

test("every service is health-checked and the Managers wait for a healthy Postgres", () => {
  for (const [name, service] of Object.entries(compose.services))
    expect({ name, healthcheck: Boolean(service.healthcheck) }).toEqual({ name, healthcheck: true });
  for (const name of ["manager", "demo"]) {
    expect(compose.services[name]?.depends_on?.postgres?.condition).toBe("service_healthy");
    expect(compose.services[name]?.ports).toContain("8080:8080");
  }
});

test("the Manager's environment uses only variables it reads, and valid values", () => {
  for (const name of ["manager", "demo"]) {
    const env = compose.services[name]?.environment ?? {};
    for (const variable of Object.keys(env)) expect(Object.keys(MANAGER_ENV)).toContain(variable);
    expect(env.KUBENOVA_DATABASE_URL).toStartWith("postgres://");
  }
});
