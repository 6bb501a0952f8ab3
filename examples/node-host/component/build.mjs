// Transpiles the twofa WASI component (wasm32-wasip2) into an ES module with jco, into
// component/gen/twofa/ (generated, not checked in). The tests call `build()` first, so a fresh
// checkout only needs `npm ci`; `npm run transpile` forces a rebuild.
//
// It uses @bytecodealliance/jco-transpile, the library behind `jco transpile` (jco 1.35.0 runs
// jco-transpile 0.15.0), without the rest of jco's CLI. The equivalent command is
//
//   npx jco transpile twofa_component.wasm -o component/gen/twofa --name twofa \
//     --map 'twofa:auth/store@0.1.0=../../host.mjs#store' \
//     --map 'twofa:auth/mailer@0.1.0=../../host.mjs#mailer' \
//     --map 'twofa:auth/events@0.1.0=../../host.mjs#events' \
//     --map 'wasi:clocks/wall-clock=../../host.mjs#wallClock' \
//     --map 'wasi:clocks/monotonic-clock=../../host.mjs#monotonicClock'
//
// (map targets are relative to gen/twofa/twofa.js). Everything else WASI is mapped to
// @bytecodealliance/preview2-shim by default.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "..", "..", "..");

/** The component: $TWOFA_COMPONENT, else the repository's release build (`make component`). */
export const COMPONENT =
  process.env.TWOFA_COMPONENT ?? join(REPO, "wasm-component", "target", "wasm32-wasip2", "release", "twofa_component.wasm");
/** Where the generated module goes. */
export const GEN = join(HERE, "gen");
/** The generated entry module. */
export const MODULE = join(GEN, "twofa", "twofa.js");

const HOST = "../../host.mjs";
const OPTIONS = {
  name: "twofa",
  map: {
    "twofa:auth/store@0.1.0": `${HOST}#store`,
    "twofa:auth/mailer@0.1.0": `${HOST}#mailer`,
    "twofa:auth/events@0.1.0": `${HOST}#events`,
    // Without a version, these match whichever wasi:clocks 0.2.x the component imports (0.2.6).
    "wasi:clocks/wall-clock": `${HOST}#wallClock`,
    "wasi:clocks/monotonic-clock": `${HOST}#monotonicClock`,
  },
  // Exports throw `ComponentError` (with the WIT error in `.payload`), as the jco CLI does.
  noComponentErrorWrapping: false,
};

/** A fingerprint of the inputs: the component's bytes, the options and the transpiler. */
async function fingerprint(wasm) {
  const transpiler = JSON.parse(
    await readFile(join(HERE, "..", "node_modules", "@bytecodealliance", "jco-transpile", "package.json"), "utf8"),
  ).version;
  return createHash("sha256").update(wasm).update(JSON.stringify(OPTIONS)).update(transpiler).digest("hex");
}

/**
 * Transpiles the component unless gen/ already holds the output for the same inputs.
 * @returns {Promise<{built: boolean, ms: number, imports?: string[]}>}
 */
export async function build({ force = false, quiet = false } = {}) {
  const started = performance.now();
  if (!existsSync(COMPONENT)) {
    throw new Error(`${COMPONENT} is missing: build it with \`make component\` in the repository root (or set TWOFA_COMPONENT)`);
  }
  const wasm = await readFile(COMPONENT);
  const stamp = await fingerprint(wasm);
  const stampFile = join(GEN, "stamp");
  if (!force && existsSync(MODULE) && existsSync(stampFile) && (await readFile(stampFile, "utf8")) === stamp) {
    return { built: false, ms: performance.now() - started };
  }

  const { transpileBytes } = await import("@bytecodealliance/jco-transpile");
  const { files, imports } = await transpileBytes(wasm, { ...OPTIONS });
  // A mapping that did not apply would silently give the component the real clock (or no store).
  if (!imports.includes(HOST) || imports.includes("@bytecodealliance/preview2-shim/clocks")) {
    throw new Error(`unexpected imports of the transpiled component: ${imports.join(", ")} (does it still import wasi:clocks?)`);
  }

  // Written beside gen/ and renamed into place, so a reader never sees half a module.
  const scratch = `${GEN}.tmp-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  for (const [name, bytes] of Object.entries(files)) {
    const path = join(scratch, "twofa", name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  }
  await writeFile(join(scratch, "stamp"), stamp);
  await rm(GEN, { recursive: true, force: true });
  await rename(scratch, GEN);

  const ms = performance.now() - started;
  if (!quiet) console.error(`component: transpiled ${COMPONENT} (${wasm.length} bytes) in ${ms.toFixed(0)} ms → ${MODULE}`);
  return { built: true, ms, imports };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await build({ force: process.argv.includes("--force") });
}
