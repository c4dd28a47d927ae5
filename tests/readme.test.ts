/** The README stays true: every configuration variable is documented, and the two commands exist. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { MANAGER_ENV } from "../shared/config.ts";
import pkg from "../package.json" with { type: "json" };

const readme = await Bun.file(join(import.meta.dir, "..", "README.md")).text();

test("every Manager variable is in the README's configuration table", () => {
  const missing = Object.keys(MANAGER_ENV).filter((name) => !readme.includes(`| \`${name}\` |`));
  expect(missing).toEqual([]);
});

test("the README's commands are package scripts and name the pinned Bun", () => {
  expect(readme).toContain("bun run start");
  expect(readme).toContain("bun run test");
  expect(pkg.scripts.start).toContain("manager");
  expect(pkg.scripts.test).toContain("tests/run.ts");
  expect(readme).toContain(`npm install -g bun@${pkg.packageManager.split("@")[1]}`);
});
