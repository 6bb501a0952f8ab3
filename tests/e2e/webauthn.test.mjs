// WebAuthn through Chromium's virtual authenticator (CDP): register a device with a friendly
// name on the Security tab, see it listed and mailed about, rename it, sign in with it, remove it.

import assert from "node:assert/strict";
import { assertNoPageErrors, chooseMethod, expectPath, expectText, shot, signIn, signOut, useDemo } from "./helpers.mjs";

const scenario = useDemo();

scenario("a security key: register, list, mail, rename, sign in with it, remove", "webauthn", async (demo) => {
  const { page, email, authenticator: { cdp, authenticatorId } } = await demo.newUser("wanda", { authenticator: true });
  await expectPath(page, "/orders");
  await page.goto(`${demo.url}/security`);
  await expectText(page, "#webauthn-empty", /No devices registered/);

  // Register "Work laptop".
  const before = await demo.lastMailId();
  await page.click("#webauthn-add");
  await page.fill("#webauthn-name", "Work laptop");
  await page.click("#webauthn-register");
  const device = page.locator("#webauthn-devices li[data-method-id]");
  await device.first().waitFor({ state: "visible" });
  assert.equal(await device.count(), 1, "one device listed");
  const item = await device.first().innerText();
  assert.match(item, /Work laptop/, "the friendly name is listed");
  assert.match(item, /Added/, "the date added is listed");
  // The date added is a <time> of today (the demo's clock is not moved in this file).
  const added = await device.first().locator("time").first().getAttribute("datetime");
  assert.ok(added, "the date added is a <time datetime>");
  assert.ok(Math.abs(Date.parse(added) / 1000 - demo.now()) < 300, `date added ${added} is now`);
  const shownDate = await device.first().locator("time").first().innerText();
  assert.ok(shownDate.includes(String(new Date(added).getFullYear())), `the date is shown (${shownDate})`);
  await page.locator("#webauthn-empty").waitFor({ state: "hidden" });
  assert.equal(await page.locator("#webauthn-error").innerText(), "", "no error shown");
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert.equal(credentials.length, 1, "the virtual authenticator holds one credential");
  await shot(page, "security-webauthn");

  // The confirmation email, in /mail.json and on the /mail page.
  const mail = await demo.waitForMail({ to: email, subject: /sign-in method was added/i, after: before });
  assert.match(mail.text, /Work laptop/, "the mail names the device");
  await page.goto(`${demo.url}/mail`);
  const first = page.locator(".mail-item").first();
  await expectText(page, ".mail-item .mail-subject", /sign-in method was added/i);
  assert.equal(await first.locator(".mail-to").innerText(), mail.to);
  assert.match(await first.locator(".mail-text").innerText(), /Work laptop/);
  const html = await first.locator("iframe.mail-html").contentFrame().locator("body").innerText();
  assert.match(html, /Work laptop/, "the HTML part is shown in its iframe");

  // Rename it.
  await page.goto(`${demo.url}/security`);
  await device.first().locator(".rename").click();
  await page.locator("#rename-dialog").waitFor({ state: "visible" });
  assert.equal(await page.inputValue("#rename-input"), "Work laptop", "the dialog starts from the current name");
  await page.fill("#rename-input", "Office laptop");
  await page.click("#rename-save");
  await page.locator("#rename-dialog").waitFor({ state: "hidden" });
  await expectText(page, "#webauthn-devices li[data-method-id]", /Office laptop/);

  // Sign out, sign in with the key.
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  await chooseMethod(page, "webauthn");
  await page.locator("#use-key").waitFor({ state: "visible" });
  assert.equal(await page.locator("#code-input").isVisible(), false, "no code field for a security key");
  await shot(page, "signin-2fa-webauthn");
  await page.click("#use-key");
  await expectPath(page, "/orders");
  await expectText(page, "#account-email", new RegExp(email.replace(/[.+]/g, "\\$&")));

  // The device shows it was used; remove it (no orders: 2FA is not required, so the last
  // method may go; the sign-in just now is the recent proof the removal needs).
  await page.goto(`${demo.url}/security`);
  await expectText(page, "#webauthn-devices li[data-method-id]", /Last used/);
  const beforeRemove = await demo.lastMailId();
  await device.first().locator(".remove").click();
  await page.locator("#confirm-dialog").waitFor({ state: "visible" });
  await expectText(page, "#confirm-dialog", /Office laptop/);
  await page.click("#confirm-yes");
  await page.locator("#confirm-dialog").waitFor({ state: "hidden" });
  await expectText(page, "#webauthn-empty", /No devices registered/);
  assert.equal(await device.count(), 0, "the device is gone from the list");
  assert.equal(await page.locator("#webauthn-error").innerText(), "", "no error shown");
  const removed = await demo.waitForMail({ to: email, subject: /sign-in method was removed/i, after: beforeRemove });
  assert.match(removed.text, /Office laptop/);

  // Without a method, signing in needs only the password.
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/orders");
  assertNoPageErrors(demo);
});
