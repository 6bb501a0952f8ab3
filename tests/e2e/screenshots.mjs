// Copies the screenshots the end-to-end tests saved (target/e2e-screenshots/) into
// docs/screenshots/, for the documentation. `make screenshots` runs it.
//
//   node tests/e2e/screenshots.mjs          copy the latest screenshots
//   node tests/e2e/screenshots.mjs --run    run the tests first (node --test tests/e2e/), then copy
//
// Only the screenshots listed below are copied (never FAILED-*.png); a missing one is an error,
// as is one older than the run that produced the others (a scenario that no longer gets that far).

import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT, SCREENSHOTS } from "./helpers.mjs";

/** The screenshots for the docs: name → what it shows. */
export const DOC_SCREENSHOTS = {
  "security-all-methods": "the Security tab with every method on",
  "security-totp-setup": "turning on the authenticator app: QR code and key",
  "security-totp": "the Security tab with the authenticator app on",
  "security-email": "the Security tab with email codes on",
  "security-webauthn": "the Security tab with a security key registered",
  "security-recovery-codes": "recovery codes just generated",
  "security-attention": "the Attention box after a first order without 2FA",
  "security-last-method-refused": "turning off the last method, refused",
  "security-stepup-dialog": "\"Confirm it's you\" with a wrong code",
  "security-375px": "the Security tab at 375 px wide",
  "signin-2fa": "the sign-in's second step, all methods offered",
  "signin-2fa-totp": "the sign-in's second step, authenticator app",
  "signin-2fa-email": "the sign-in's second step, email code sent",
  "signin-2fa-webauthn": "the sign-in's second step, security key",
  "signin-2fa-totp-replayed": "a used code refused at sign-in",
  mailbox: "the demo's mailbox",
};

const TARGET = join(REPO_ROOT, "docs", "screenshots");
/** A screenshot older than the newest by more than this is stale (the suite takes ~1 minute). */
const STALE_MS = 30 * 60 * 1000;

function main() {
  const { values } = parseArgs({ options: { run: { type: "boolean", default: false } } });
  if (values.run) {
    const result = spawnSync(process.execPath, ["--test", join("tests", "e2e") + "/"], { cwd: REPO_ROOT, stdio: "inherit" });
    if (result.status !== 0) {
      console.error("the end-to-end tests failed: no screenshots copied");
      process.exit(result.status ?? 1);
    }
  }
  const sources = Object.keys(DOC_SCREENSHOTS).map((name) => join(SCREENSHOTS, `${name}.png`));
  const missing = sources.filter((path) => !existsSync(path));
  if (missing.length) {
    console.error(`missing (run node --test tests/e2e/ first):\n  ${missing.map((p) => relative(REPO_ROOT, p)).join("\n  ")}`);
    process.exit(1);
  }
  const newest = Math.max(...sources.map((path) => statSync(path).mtimeMs));
  const stale = sources.filter((path) => newest - statSync(path).mtimeMs > STALE_MS);
  if (stale.length) {
    console.error(`stale (not remade by the last run):\n  ${stale.map((p) => relative(REPO_ROOT, p)).join("\n  ")}`);
    process.exit(1);
  }
  mkdirSync(TARGET, { recursive: true });
  for (const path of sources) {
    const name = path.slice(SCREENSHOTS.length + 1);
    copyFileSync(path, join(TARGET, name));
    console.log(`${relative(REPO_ROOT, join(TARGET, name))}  (${DOC_SCREENSHOTS[name.replace(/\.png$/, "")]})`);
  }
}

main();
