// Shared helpers of the end-to-end tests of examples/web-demo: start the demo (a child process
// with --test-clock, its own data directory, HTTP and SMTP ports), drive a headless Chromium with
// playwright-core (a fresh profile per run), read the demo's mailbox, move its clock, make TOTP
// codes for the demo's time and save screenshots under target/e2e-screenshots/.
//
//   const scenario = useDemo();             // one demo and browser for the test file
//   scenario("what the user does", "name", async (demo) => {
//     const { page, email } = await demo.newUser("tom");
//     ...
//   });
//
// Env: CHROMIUM (the browser binary; default /usr/bin/chromium), E2E_HEADFUL=1 (show the window),
// E2E_DEMO_LOG=1 (echo the demo's output), E2E_DEMO_SERVER (another server.mjs to test).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { generateSync } from "otplib";
import { chromium } from "playwright-core";

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, "..", "..");
/** The demo's server; E2E_DEMO_SERVER points the tests at another copy (e.g. a deliberately
 * broken one, to check that the tests catch it). */
export const SERVER = process.env.E2E_DEMO_SERVER
  ? resolve(process.env.E2E_DEMO_SERVER)
  : join(REPO_ROOT, "examples", "web-demo", "server.mjs");
export const SCREENSHOTS = join(REPO_ROOT, "target", "e2e-screenshots");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
/** Options of every scenario's test(): a hung scenario fails instead of blocking the run. */
const SCENARIO = { timeout: 120_000 };
/** How long a single wait for something on screen may take. */
export const TIMEOUT = 15_000;

/** A free TCP port on 127.0.0.1 (the OS picks it; it is released before returning). */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

const usedEmails = new Set();
/** An email address not used before in this process (each test file has its own demo and data,
 * so `<name>@example.com` is unique there; the screenshots stay the same from run to run). */
function uniqueEmail(name) {
  let email = `${name}@example.com`;
  for (let n = 2; usedEmails.has(email); n++) email = `${name}${n}@example.com`;
  usedEmails.add(email);
  return email;
}

export const PASSWORD = "correct horse battery staple";

/** Starts `node examples/web-demo/server.mjs --test-clock` (the child's output is kept for
 * failure reports) with the admin password `adminPassword` and the demo's defaults otherwise
 * (a grace period of 7 days, browsers remembered for 30), and waits for the URL it prints.
 * Retries on a port taken in between. */
async function spawnDemo(dataDir, adminPassword) {
  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const smtpPort = await freePort();
    const child = spawn(process.execPath, [SERVER, "--test-clock"], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        SMTP_PORT: String(smtpPort),
        DEMO_DATA_DIR: dataDir,
        DEMO_GRACE_DAYS: "7",
        DEMO_REMEMBER_DAYS: "30",
        DEMO_ADMIN_PASSWORD: adminPassword,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = [];
    const echo = process.env.E2E_DEMO_LOG === "1";
    const keep = (stream) => (chunk) => {
      output.push(chunk.toString());
      if (output.length > 2000) output.splice(0, output.length - 2000);
      if (echo) stream.write(`[demo] ${chunk}`);
    };
    child.stdout.on("data", keep(process.stdout));
    child.stderr.on("data", keep(process.stderr));
    try {
      const url = await new Promise((done, fail) => {
        const timer = setTimeout(() => fail(new Error("the demo printed no URL within 30 s")), 30_000);
        const look = () => {
          const match = output.join("").match(/http:\/\/localhost:(\d+)/);
          if (match) {
            clearTimeout(timer);
            done(match[0]);
          }
        };
        child.stdout.on("data", look);
        child.once("exit", (code, signal) => {
          clearTimeout(timer);
          fail(new Error(`the demo exited (${code ?? signal}) before printing its URL`));
        });
      });
      assert.equal(url, `http://localhost:${port}`, "the demo must listen on $PORT");
      return { child, url, port, smtpPort, output };
    } catch (error) {
      child.kill("SIGKILL");
      lastError = new Error(`${error.message}\n--- demo output ---\n${output.join("")}`);
      if (!/EADDRINUSE/.test(output.join(""))) break;
    }
  }
  throw lastError;
}

/**
 * The demo of one test file: before its scenarios, starts the demo and a browser (startDemo);
 * after them, closes both. Returns `scenario(title, name, body)`, which declares a test (with
 * SCENARIO's timeout) that runs `body(demo)` under recordFailure(demo, name, ...).
 */
export function useDemo() {
  let demo;
  before(async () => {
    demo = await startDemo();
  }, SCENARIO);
  after(async () => {
    await demo?.close();
  });
  return (title, name, body) => test(title, SCENARIO, () => recordFailure(demo, name, () => body(demo)));
}

/**
 * Starts the demo and a browser. Returns the handle every scenario gets:
 * `url`, `adminPassword`, `newUser()`, `newPage()`, `context`, `mailbox()`, `waitForMail()`,
 * `lastMailId()`, `advance()`, `now()`, `totpNow()`, `pageErrors`, `output()`, `close()`.
 */
async function startDemo() {
  const dataDir = mkdtempSync(join(tmpdir(), "twofa-e2e-data-"));
  const profile = mkdtempSync(join(tmpdir(), "twofa-e2e-profile-"));
  const adminPassword = randomBytes(12).toString("base64url");
  const demo = await spawnDemo(dataDir, adminPassword);
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: process.env.E2E_HEADFUL !== "1",
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
      locale: "en-US",
    });
  } catch (error) {
    demo.child.kill("SIGKILL");
    throw error;
  }
  context.setDefaultTimeout(TIMEOUT);
  context.setDefaultNavigationTimeout(TIMEOUT);

  // What goes wrong inside the pages: uncaught exceptions and console errors (a failed fetch of
  // an expected 4xx is logged by Chromium as "Failed to load resource": that one is expected).
  const pageErrors = [];
  const watch = (page) => {
    page.on("pageerror", (error) => pageErrors.push(`${page.url()}: uncaught ${error.message}`));
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      if (/Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) return;
      pageErrors.push(`${page.url()}: console.error ${message.text()}`);
    });
  };
  context.on("page", watch);
  for (const page of context.pages()) watch(page);

  let offset = 0; // seconds the demo's clock is ahead of real time (we moved it)

  const handle = {
    url: demo.url,
    /** The password of the demo's /admin page. */
    adminPassword,
    context,
    pageErrors,
    /** The demo's stdout and stderr so far. */
    output: () => demo.output.join(""),
    /** A page for a new scenario, signed out: the persistent context's first blank page, then
     * new ones; the cookies are cleared and the previous scenarios' pages closed. */
    async newPage() {
      await context.clearCookies();
      for (const p of context.pages()) if (p.__taken) await p.close();
      const blank = context.pages().find((p) => p.url() === "about:blank" && !p.__taken);
      const page = blank ?? (await context.newPage());
      page.__taken = true;
      return page;
    },
    /** A new scenario's user: a new page (newPage; sized to `viewport` and given Chromium's
     * virtual authenticator when asked, before anything is loaded), signed up with an address
     * `<name>@example.com` not used before (uniqueEmail) and PASSWORD; the demo signs the new
     * account in (it lands on /orders). Returns `page`, `email` and `authenticator`
     * (addVirtualAuthenticator's result; undefined unless asked). */
    async newUser(name, { viewport, authenticator = false } = {}) {
      const page = await handle.newPage();
      if (viewport) await page.setViewportSize(viewport);
      const virtualAuthenticator = authenticator ? await addVirtualAuthenticator(page) : undefined;
      const email = uniqueEmail(name);
      await submitCredentials(page, demo.url, "signup", email, PASSWORD);
      return { page, email, authenticator: virtualAuthenticator };
    },
    /** The delivered messages, newest first (GET /mail.json). */
    async mailbox() {
      const res = await fetch(`${demo.url}/mail.json`);
      assert.equal(res.status, 200, "GET /mail.json");
      return res.json();
    },
    /** Waits for a message to `to` whose subject matches, newer than `after` (a message id). */
    async waitForMail({ to, subject, after = 0, timeout = TIMEOUT }) {
      const until = Date.now() + timeout;
      for (;;) {
        const messages = await handle.mailbox();
        const found = messages.find(
          (m) => m.id > after && m.to.includes(to) && (subject ? subject.test(m.subject) : true),
        );
        if (found) return found;
        if (Date.now() > until) {
          const seen = messages.slice(0, 10).map((m) => `#${m.id} to ${m.to}: ${m.subject}`);
          throw new Error(`no mail to ${to} matching ${subject} after #${after}; newest:\n${seen.join("\n")}`);
        }
        await sleep(100);
      }
    },
    /** The newest message id (0 if none), to wait for mail sent after now. */
    async lastMailId() {
      const [newest] = await handle.mailbox();
      return newest?.id ?? 0;
    },
    /** Moves the demo's clock `seconds` forward (POST /__test/advance). */
    async advance(seconds) {
      const res = await fetch(`${demo.url}/__test/advance`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ seconds }),
      });
      assert.equal(res.status, 200, `POST /__test/advance: ${await res.clone().text()}`);
      const body = await res.json();
      offset += seconds;
      assert.equal(body.offset, offset, "the demo's clock offset is the sum of our advances");
      return body;
    },
    /** The demo's time, in unix seconds (real time plus what we advanced). */
    now: () => Math.floor(Date.now() / 1000) + offset,
    /** The TOTP code (SHA1, 6 digits, 30 s) of `secret` at the demo's time. */
    totpNow(secret) {
      return generateSync({ secret: secret.replace(/\s+/g, ""), epoch: handle.now() });
    },
    async close() {
      await context.close().catch(() => {});
      await stopChild(demo.child);
      rmSync(profile, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/**
 * Saves a full-page screenshot as target/e2e-screenshots/<name>.png; returns its path.
 * Chromium does not paint iframes below the viewport into a full-page capture (the mailbox's
 * HTML parts came out blank), so a page with iframes is captured with a viewport as tall as it.
 * `fullPage: false` captures the viewport only (for modal dialogs).
 */
export async function shot(page, name, { fullPage = true } = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  if (!fullPage) {
    // A modal dialog: its backdrop covers the viewport only, so capture just that.
    await page.screenshot({ path });
    return path;
  }
  const viewport = page.viewportSize();
  const frames = await page.locator("iframe").count();
  if (frames > 0 && viewport) {
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: viewport.width, height: Math.min(Math.max(height, viewport.height), 10_000) });
    for (let i = 0; i < frames; i++) {
      await page.locator("iframe").nth(i).contentFrame().locator("body").waitFor({ state: "attached" });
    }
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    await page.screenshot({ path, fullPage: true });
    await page.setViewportSize(viewport);
  } else {
    await page.screenshot({ path, fullPage: true });
  }
  return path;
}

/**
 * Runs a scenario's body; when it fails, saves a screenshot of every open page
 * (FAILED-<name>-<n>.png) and adds the demo's recent output and the pages' errors to the error.
 */
async function recordFailure(demo, name, body) {
  try {
    await body();
  } catch (error) {
    const pages = demo.context.pages();
    const saved = [];
    for (const [i, page] of pages.entries()) {
      saved.push(await shot(page, `FAILED-${name}-${i}`).catch((e) => `(screenshot failed: ${e.message})`));
    }
    const tail = demo.output().split("\n").slice(-40).join("\n");
    error.message +=
      `\n--- screenshots: ${saved.join(", ")}` +
      `\n--- page errors: ${demo.pageErrors.join("\n") || "none"}` +
      `\n--- demo output (tail) ---\n${tail}`;
    throw error;
  }
}

/** Fails if a page threw or logged an error. */
export function assertNoPageErrors(demo) {
  assert.deepEqual(demo.pageErrors, [], "the pages threw or logged errors");
}

// User actions, through the UI

/** The path of the page's URL. */
export const pathOf = (page) => new URL(page.url()).pathname;

/** Waits until the page is at `path`. */
export async function expectPath(page, path) {
  await page.waitForURL((url) => url.pathname === path, { timeout: TIMEOUT });
}

/** Fills email and password into the form of /<form> (signup or signin: its fields are
 * #<form>-email, #<form>-password and #<form>-submit), submits it and waits to leave the page. */
async function submitCredentials(page, url, form, email, password) {
  await page.goto(`${url}/${form}`);
  await page.fill(`#${form}-email`, email);
  await page.fill(`#${form}-password`, password);
  await page.click(`#${form}-submit`);
  await page.waitForURL((u) => u.pathname !== `/${form}`, { timeout: TIMEOUT });
}

/** Enters email and password on /signin; returns the path reached (/signin/2fa, /orders, ...). */
export async function signIn(page, url, email, password = PASSWORD) {
  await submitCredentials(page, url, "signin", email, password);
  return pathOf(page);
}

/** Signs out with the nav's button; lands on /signin. */
export async function signOut(page) {
  await page.click("#signout");
  await expectPath(page, "/signin");
}

/** On /signin/2fa: picks a method if its button is shown (a single method may be preselected). */
export async function chooseMethod(page, kind) {
  const button = page.locator(`#method-${kind}`);
  await button.waitFor({ state: "visible" });
  await button.click();
}

/** On /signin/2fa: enters a code for `kind` and presses Verify. */
export async function submitSigninCode(page, kind, code) {
  await chooseMethod(page, kind);
  await page.fill("#code-input", code);
  await page.click("#verify");
}

/** Waits for the visible text of `selector` to match `pattern`; returns the text. */
export async function expectText(page, selector, pattern, timeout = TIMEOUT) {
  const locator = page.locator(selector).first();
  try {
    await page.waitForFunction(
      ([sel, source, flags]) => {
        const el = document.querySelector(sel);
        return !!el && el.checkVisibility() && new RegExp(source, flags).test(el.innerText);
      },
      [selector, pattern.source, pattern.flags],
      { timeout },
    );
  } catch (error) {
    const actual = await locator.innerText().catch(() => "(missing)");
    const visible = await locator.isVisible().catch(() => false);
    throw new Error(`${selector} should show ${pattern} but shows ${JSON.stringify(actual)} (visible: ${visible})`, {
      cause: error,
    });
  }
  return locator.innerText();
}

/** A six-digit code that is not `code` (so surely wrong now): `code + offset`, modulo 10^6. */
export function wrongCode(code, offset = 1) {
  return String((Number(code) + offset) % 1_000_000).padStart(6, "0");
}

/** The six-digit code in a message's text. */
export function codeIn(message) {
  const match = message.text.match(/\b(\d{6})\b/);
  assert.ok(match, `no code in the message ${JSON.stringify(message.text)}`);
  return match[1];
}

/** Adds Chromium's virtual authenticator (CTAP2, internal, resident keys, user verified) to the
 * page; returns the CDP session and the authenticator id. */
async function addVirtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

/** On /security: turns the authenticator app on with a code for the demo's time; returns the
 * secret shown. */
export async function enableTotp(page, demo) {
  await page.locator("#totp-toggle").check();
  await page.locator("#totp-secret").waitFor({ state: "visible" });
  await page.waitForFunction(() => document.querySelector("#totp-secret")?.textContent.trim().length >= 16);
  const secret = (await page.locator("#totp-secret").innerText()).replace(/\s+/g, "");
  assert.match(secret, /^[A-Z2-7]+=*$/, "the TOTP secret is base32");
  await page.fill("#totp-code", demo.totpNow(secret));
  await page.click("#totp-submit");
  await expectToggle(page, "#totp-toggle", true);
  await page.locator("#totp-setup").waitFor({ state: "hidden" });
  return secret;
}

/** Waits for a switch to be on (true) or off (false). */
export async function expectToggle(page, selector, on) {
  await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.checked === want, [selector, on], {
    timeout: TIMEOUT,
  });
}
