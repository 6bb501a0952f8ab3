// The TypeScript declarations (index.d.ts), checked by tsc through test/types-check.ts: the same
// check as `npx tsc --noEmit -p .` from bindings/node.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGE = join(dirname(fileURLToPath(import.meta.url)), "..");
const TSC = join(PACKAGE, "node_modules", ".bin", "tsc");

/** tsc's exit status and output for `args`, run in the package. */
function tsc(...args) {
  const result = spawnSync(TSC, args, { cwd: PACKAGE, encoding: "utf8", timeout: 120_000 });
  if (result.error) throw result.error;
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

test("test/types-check.ts type-checks against index.d.ts (tsc --noEmit -p .)", () => {
  const { status, out } = tsc("--noEmit", "-p", ".");
  assert.equal(status, 0, out);
});

test("index.d.ts itself type-checks (without skipLibCheck)", () => {
  const { status, out } = tsc("--noEmit", "-p", ".", "--skipLibCheck", "false");
  assert.equal(status, 0, out);
});
