/** Unit tests of shared/: ids, label selectors, the logger, config parsing, error codes. */
import { describe, expect, test } from "bun:test";
import { ConfigError, parseManagerConfig } from "../../shared/config.ts";
import { ERROR_CODES, KubeNovaError } from "../../shared/errors.ts";
import { UUID_PATTERN, uuidv7, uuidv7Time } from "../../shared/ids.ts";
import { matchesLabels, parseLabelSelector } from "../../shared/label-selector.ts";
import { createLogger, createMemoryLogger } from "../../shared/logger.ts";

describe("uuidv7", () => {
  test("is a version-7, variant-10 UUID carrying its millisecond time", () => {
    const at = Date.UTC(2026, 10, 21, 12, 0, 0, 123);
    const id = uuidv7(at);
    expect(id).toMatch(UUID_PATTERN);
    expect(id[14]).toBe("7");
    expect(["8", "9", "a", "b"]).toContain(id[19]!);
    expect(uuidv7Time(id)).toBe(at);
  });

  test("ids made in one millisecond, or with a clock stepping back, still sort strictly", () => {
    const ids = Array.from({ length: 5000 }, (_, i) => uuidv7(1_800_000_000_000 - (i % 3)));
    const sorted = [...ids].sort();
    expect(sorted).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("label selectors", () => {
  const labels = { env: "prod", tier: "web", "example.com/team": "a" };
  test.each([
    ["env=prod", true],
    ["env==prod", true],
    ["env!=prod", false],
    ["env in (prod, staging)", true],
    ["env notin (prod)", false],
    ["tier", true],
    ["!tier", false],
    ["!missing", true],
    ["missing!=x", true],
    ["env=prod,tier=web,example.com/team=a", true],
    ["env=prod,tier=db", false],
    ["", true],
  ])("%s → %p", (selector, expected) => {
    expect(matchesLabels(parseLabelSelector(selector), labels)).toBe(expected);
  });

  test.each(["env=", "=x", "a b c", "env in ()", "bad key!=x", "env=has space", "k=" + "v".repeat(64)])(
    "%s is refused with KN-400 naming the field",
    (selector) => {
      if (selector === "env=") {
        // an empty value is legal in Kubernetes: env is set to ""
        expect(matchesLabels(parseLabelSelector(selector), { env: "" })).toBe(true);
        return;
      }
      try {
        parseLabelSelector(selector, "query.labelSelector");
        throw new Error("accepted");
      } catch (error) {
        expect(error).toBeInstanceOf(KubeNovaError);
        expect((error as KubeNovaError).code).toBe("KN-400");
        expect((error as KubeNovaError).message).toStartWith("query.labelSelector:");
      }
    },
  );
});

describe("logger", () => {
  test("writes one JSON object per line with bound context and serialized errors", () => {
    const lines: string[] = [];
    const log = createLogger({ sink: (line) => lines.push(line), base: { component: "t" } });
    log
      .child({ request_id: "r1", tenant: "acme" })
      .warn("hello", { err: new KubeNovaError("KN-409", "dup") });
    log.debug("dropped below the threshold");
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({
      level: "warn",
      msg: "hello",
      component: "t",
      request_id: "r1",
      tenant: "acme",
    });
    expect(record.err).toMatchObject({ type: "KubeNovaError", code: "KN-409", message: "dup" });
    expect(Date.parse(record.time)).not.toBeNaN();
  });

  test("survives unserializable fields", () => {
    const log = createMemoryLogger();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    log.info("cyclic", { cyclic, big: 10n });
    expect(log.records[0]).toMatchObject({ msg: "cyclic" });
  });
});

describe("config", () => {
  test("defaults need no variables", () => {
    const config = parseManagerConfig({});
    expect(config.http).toEqual({ host: "127.0.0.1", port: 8080, bodyLimitBytes: 1024 * 1024 });
    expect(config.dataDir).toBe("./data");
    expect(config.databaseUrl).toBeNull();
    expect(config.insecureDevAuth).toBe(false);
    expect(config.mqtt.maxHandshakesInFlight).toBe(64);
    expect(parseManagerConfig({ KUBENOVA_MQTT_MAX_HANDSHAKES: "0" }).mqtt.maxHandshakesInFlight).toBe(0);
  });

  test.each([
    ["KUBENOVA_HTTP_PORT", "-1"],
    ["KUBENOVA_JWT_SECRET", "x".repeat(31)],
    ["KUBENOVA_JWT_LEEWAY_SECONDS", "61"],
    ["KUBENOVA_JWT_ALGORITHMS", "HS256"],
    ["KUBENOVA_BODY_LIMIT_BYTES", "10"],
    ["KUBENOVA_MQTT_MAX_HANDSHAKES", "-1"],
    ["KUBENOVA_MQTT_MAX_HANDSHAKES", "many"],
  ])("%s=%s is a ConfigError naming the variable", (name, value) => {
    expect(() => parseManagerConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => parseManagerConfig({ [name]: value })).toThrow(name);
  });

  test("Postgres URLs and explicit values are taken", () => {
    const config = parseManagerConfig({
      KUBENOVA_DATABASE_URL: "postgres://u@db:5432/kn",
      KUBENOVA_HTTP_PORT: "0",
      KUBENOVA_INSECURE_DEV_AUTH: "true",
      KUBENOVA_JWT_ALGORITHMS: "ES256",
    });
    expect(config.databaseUrl).toBe("postgres://u@db:5432/kn");
    expect(config.http.port).toBe(0);
    expect(config.insecureDevAuth).toBe(true);
    expect(config.jwt.algorithms).toEqual(["ES256"]);
  });
});

test("every error code maps to its own HTTP status", () => {
  for (const [code, { status }] of Object.entries(ERROR_CODES)) expect(code).toBe(`KN-${status}`);
  expect(new KubeNovaError("KN-503", "down").retryable).toBe(true);
  expect(new KubeNovaError("KN-400", "bad").retryable).toBe(false);
});
