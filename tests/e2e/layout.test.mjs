// Keyboard and size sanity of the Security tab: at 375 px wide nothing scrolls sideways in any of
// its states, every form control has a label, and the authenticator app can be turned on with the
// keyboard alone.

import assert from "node:assert/strict";
import { assertNoPageErrors, codeIn, expectText, expectToggle, shot, useDemo } from "./helpers.mjs";

const scenario = useDemo();

const WIDTH = 375;
/** A phone's screen, WIDTH wide. */
const NARROW = { width: WIDTH, height: 812 };

/** Fails if the page scrolls sideways; names the elements and the text that stick out. */
async function assertNoSidewaysScroll(page, state) {
  const { scrollWidth, offenders } = await page.evaluate((width) => {
    const offenders = [];
    for (const el of document.querySelectorAll("body *")) {
      if (!el.checkVisibility()) continue;
      const r = el.getBoundingClientRect();
      if (r.right > width + 0.5 && r.width > 0) {
        offenders.push(`${el.tagName.toLowerCase()}#${el.id}.${el.getAttribute("class") ?? ""} right=${Math.round(r.right)}`);
      }
    }
    // Text that overflows its box (a long word that cannot wrap) does not widen any element.
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || !node.parentElement?.checkVisibility()) continue;
      range.selectNodeContents(node);
      const r = range.getBoundingClientRect();
      if (r.right > width + 0.5) {
        const parent = node.parentElement;
        offenders.push(`text ${JSON.stringify(node.textContent.trim().slice(0, 60))} in ${parent.tagName.toLowerCase()}#${parent.id} right=${Math.round(r.right)}`);
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, offenders: offenders.slice(0, 8) };
  }, WIDTH);
  assert.ok(scrollWidth <= WIDTH, `${state}: scrollWidth ${scrollWidth} > ${WIDTH}; sticking out: ${offenders.join("; ")}`);
}

const CONTROLS = ["totp-toggle", "totp-code", "email-toggle", "email-address", "email-code", "webauthn-name", "rename-input", "stepup-method", "stepup-code"];

/** Every input, select and textarea (shown or not) has a label or an aria name; every button and
 * link has a name. Checks that the contract's controls are among them. */
async function assertLabelled(page) {
  const { missing, checked } = await page.evaluate(() => {
    const missing = [];
    const controls = [...document.querySelectorAll("input, select, textarea")].filter((el) => el.type !== "hidden");
    for (const el of controls) {
      const labels = [...(el.labels ?? [])].map((l) => l.textContent.trim()).filter(Boolean);
      const labelledBy = (el.getAttribute("aria-labelledby") ?? "")
        .split(/\s+/)
        .filter(Boolean)
        .map((id) => document.getElementById(id)?.textContent.trim())
        .filter(Boolean);
      const aria = el.getAttribute("aria-label")?.trim();
      if (!labels.length && !labelledBy.length && !aria) missing.push(`#${el.id || el.name || el.outerHTML.slice(0, 60)}`);
    }
    for (const el of document.querySelectorAll("button, a[href]")) {
      const name = (el.getAttribute("aria-label") ?? el.textContent).trim();
      if (!name) missing.push(`${el.tagName.toLowerCase()}#${el.id}`);
    }
    return { missing, checked: controls.map((el) => el.id) };
  });
  assert.deepEqual(missing, [], "controls without a label");
  for (const id of CONTROLS) assert.ok(checked.includes(id), `#${id} is on the page`);
}

scenario("the Security tab at 375 px: no sideways scroll, labelled controls, keyboard use", "layout", async (demo) => {
  const { page, email } = await demo.newUser("a-rather-long-address-for-a-narrow-screen", { viewport: NARROW, authenticator: true });
  await page.goto(`${demo.url}/security`);
  await assertNoSidewaysScroll(page, "initial");
  await assertLabelled(page);

  // Keyboard only: focus the switch, Space turns it on, Tab reaches the code, Enter submits.
  await page.focus("#totp-toggle");
  await page.keyboard.press("Space");
  await page.locator("#totp-secret").waitFor({ state: "visible" });
  await assertNoSidewaysScroll(page, "authenticator app setup (QR code and secret)");
  const box = await page.locator("#totp-qr svg").boundingBox();
  assert.ok(box && box.width >= 120 && box.x >= 0 && box.x + box.width <= WIDTH, `the QR code fits (${JSON.stringify(box)})`);
  const secret = (await page.locator("#totp-secret").innerText()).replace(/\s+/g, "");
  const secretBox = await page.locator("#totp-secret").boundingBox();
  assert.ok(secretBox.x + secretBox.width <= WIDTH, "the secret fits the screen");
  let focused = "";
  for (let i = 0; i < 15 && focused !== "totp-code"; i++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement?.id ?? "");
  }
  assert.equal(focused, "totp-code", "Tab reaches the code field");
  await page.keyboard.type(demo.totpNow(secret));
  await page.keyboard.press("Enter");
  await expectToggle(page, "#totp-toggle", true);
  await expectText(page, "#totp-state", /On/);
  await assertNoSidewaysScroll(page, "authenticator app on");

  // Email: the form and the code form open.
  await page.focus("#email-toggle");
  await page.keyboard.press("Space");
  await page.locator("#email-address").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => document.activeElement?.id), "email-address", "focus moves to the address");
  const last = await demo.lastMailId();
  await page.keyboard.press("Enter");
  await page.locator("#email-code").waitFor({ state: "visible" });
  await assertNoSidewaysScroll(page, "email code sent");
  const mail = await demo.waitForMail({ to: email, subject: /confirm your email address/i, after: last });
  assert.equal(await page.evaluate(() => document.activeElement?.id), "email-code", "focus moves to the code");
  await page.keyboard.type(codeIn(mail));
  await page.keyboard.press("Enter");
  await expectText(page, "#email-state", /On/);
  await assertNoSidewaysScroll(page, "email on (a long address)");

  // A security key with a long name.
  await page.click("#webauthn-add");
  await assertNoSidewaysScroll(page, "device form open");
  await page.fill("#webauthn-name", "My very long security key name for testing wrapping");
  await page.keyboard.press("Enter");
  await page.locator("#webauthn-devices li[data-method-id]").first().waitFor();
  await assertNoSidewaysScroll(page, "a device listed");

  // Recovery codes shown.
  await page.click("#recovery-generate");
  await page.locator("#recovery-codes li").first().waitFor();
  await assertNoSidewaysScroll(page, "recovery codes shown");
  await shot(page, "security-375px");

  // The dialogs fit too.
  await page.locator("#webauthn-devices li[data-method-id] .rename").first().click();
  await page.locator("#rename-dialog").waitFor({ state: "visible" });
  await assertNoSidewaysScroll(page, "rename dialog");
  await page.keyboard.press("Escape");
  await page.locator("#rename-dialog").waitFor({ state: "hidden" });
  await page.locator("#email-toggle").uncheck();
  await page.locator("#confirm-dialog").waitFor({ state: "visible" });
  await assertNoSidewaysScroll(page, "confirm dialog");
  assert.equal(await page.evaluate(() => document.activeElement?.closest("dialog")?.id), "confirm-dialog", "focus is in the dialog");
  await page.keyboard.press("Escape");
  await page.locator("#confirm-dialog").waitFor({ state: "hidden" });
  await expectToggle(page, "#email-toggle", true); // Escape cancels: still on (set on the dialog's close event)

  await assertLabelled(page);
  assertNoPageErrors(demo);
});

// A long address without hyphens (dots only, as in firstname.lastname@company) must wrap rather
// than make the pages scroll sideways at 375 px.
scenario("at 375 px a long email address without hyphens wraps", "layout-long-address", async (demo) => {
  const { page, email } = await demo.newUser("firstname.middlename.lastname.department", { viewport: NARROW });
  await assertNoSidewaysScroll(page, "orders (signed in as a long address)");
  await page.goto(`${demo.url}/security`);
  await page.locator("#email-toggle").check();
  const last = await demo.lastMailId();
  await page.click("#email-submit");
  const mail = await demo.waitForMail({ to: email, subject: /confirm your email address/i, after: last });
  await expectText(page, "#email-sent", /We sent a code/);
  await assertNoSidewaysScroll(page, "email code sent to a long address");
  await page.fill("#email-code", codeIn(mail));
  await page.click("#email-code-submit");
  await expectText(page, "#email-state", /On/);
  await assertNoSidewaysScroll(page, "email on with a long address");
  await page.goto(`${demo.url}/mail`);
  await assertNoSidewaysScroll(page, "the mailbox with a long address");
});
