/** The Mosquitto examples cannot drift from the topic contract: the ACL is exactly what shared/topics.ts generates. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { mosquittoAclPatterns } from "../../shared/topics.ts";

const dir = join(import.meta.dir, "../../broker/mosquitto");

test("broker/mosquitto/kubenova.acl.example equals mosquittoAclPatterns('kubenova-manager')", async () => {
  const example = await Bun.file(join(dir, "kubenova.acl.example")).text();
  expect(example).toBe(`${mosquittoAclPatterns("kubenova-manager").join("\n")}\n`);
});

test("the example config requires certificates, maps the CN to the username and loads the ACL and CRL", async () => {
  const lines = (await Bun.file(join(dir, "kubenova.conf.example")).text())
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"));
  for (const required of [
    "allow_anonymous false",
    "require_certificate true",
    "use_identity_as_username true",
    "tls_version tlsv1.2",
  ]) {
    expect(lines).toContain(required);
  }
  expect(lines.some((l) => l.startsWith("acl_file "))).toBe(true);
  expect(lines.some((l) => l.startsWith("crlfile "))).toBe(true);
});
