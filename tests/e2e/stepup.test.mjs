// Every method at once, and "Confirm it's you": the Security tab and the sign-in step with all four
// methods, then changes once the proof of a recent second factor has expired (or was revoked by a
// removal), confirmed with an emailed code, the security key and the authenticator app.

import assert from "node:assert/strict";
import { assertNoPageErrors, codeIn, enableTotp, expectPath, expectText, shot, signIn, signOut, submitSigninCode, useDemo, wrongCode } from "./helpers.mjs";

const scenario = useDemo();

scenario("all methods on; changes ask \"Confirm it's you\" once the proof expired or was revoked", "stepup", async (demo) => {
  const { page, email } = await demo.newUser("alice", { authenticator: true });
  await page.goto(`${demo.url}/security`);

  // All four: authenticator app, email, a security key, recovery codes.
  const secret = await enableTotp(page, demo);
  await page.locator("#email-toggle").check();
  let last = await demo.lastMailId();
  await page.click("#email-submit");
  const enrol = await demo.waitForMail({ to: email, subject: /confirm your email address/i, after: last });
  await page.fill("#email-code", codeIn(enrol));
  await page.click("#email-code-submit");
  await expectText(page, "#email-state", /On/);
  await page.click("#webauthn-add");
  await page.fill("#webauthn-name", "YubiKey 5C");
  await page.click("#webauthn-register");
  await expectText(page, "#webauthn-devices li[data-method-id]", /YubiKey 5C/);
  await page.click("#recovery-generate");
  await page.locator("#recovery-codes li").first().waitFor();
  const oldCodes = await page.locator("#recovery-codes li").allInnerTexts();
  assert.equal(await page.locator("#stepup-dialog").isVisible(), false, "no confirmation asked within the first 10 minutes");
  await shot(page, "security-all-methods");

  // The sign-in step offers all four.
  await signOut(page);
  await demo.advance(30);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  for (const kind of ["totp", "email", "webauthn", "recovery"]) {
    assert.equal(await page.locator(`#method-${kind}`).isVisible(), true, `#method-${kind} is offered`);
  }
  await shot(page, "signin-2fa");
  await submitSigninCode(page, "totp", demo.totpNow(secret));
  await expectPath(page, "/orders");

  // Eleven minutes later the sign-in's proof has expired: renaming asks to confirm; by email.
  await demo.advance(660);
  await page.goto(`${demo.url}/security`);
  const device = page.locator("#webauthn-devices li[data-method-id]").first();
  await device.locator(".rename").click();
  await page.fill("#rename-input", "Keyring key");
  await page.click("#rename-save");
  await page.locator("#stepup-dialog").waitFor({ state: "visible" });
  const offered = await page.locator("#stepup-method option").evaluateAll((os) => os.map((o) => o.value));
  assert.deepEqual([...offered].sort(), ["email", "recovery", "totp", "webauthn"], "every method may confirm");
  await page.selectOption("#stepup-method", "email");
  await page.locator("#stepup-send-code").waitFor({ state: "visible" });
  last = await demo.lastMailId();
  await page.click("#stepup-send-code");
  await expectText(page, "#stepup-info", /We sent a code/);
  const stepCode = codeIn(await demo.waitForMail({ to: email, subject: /your sign-in code/i, after: last }));
  await page.fill("#stepup-code", wrongCode(stepCode));
  await page.click("#stepup-verify");
  await expectText(page, "#stepup-error", /That code is not right\./);
  await shot(page, "security-stepup-dialog", { fullPage: false });
  await page.fill("#stepup-code", stepCode);
  await page.click("#stepup-verify");
  await page.locator("#stepup-dialog").waitFor({ state: "hidden" });
  await page.locator("#rename-dialog").waitFor({ state: "hidden" });
  await expectText(page, "#webauthn-devices li[data-method-id]", /Keyring key/);

  // Within the new proof's lifetime: turning email off needs no confirmation of identity.
  await page.locator("#email-toggle").uncheck();
  await page.click("#confirm-yes");
  await expectText(page, "#email-state", /Off/);
  assert.equal(await page.locator("#stepup-dialog").isVisible(), false);
  assert.equal(await page.locator("#email-section [role=alert]").innerText(), "");

  // A removal revokes the proof: removing the key asks again; confirmed with the key itself.
  await device.locator(".remove").click();
  await page.click("#confirm-yes");
  await page.locator("#stepup-dialog").waitFor({ state: "visible" });
  const kinds = await page.locator("#stepup-method option").evaluateAll((os) => os.map((o) => o.value));
  assert.ok(!kinds.includes("email"), "email, now off, is no longer offered");
  await page.selectOption("#stepup-method", "webauthn");
  await page.locator("#stepup-key").waitFor({ state: "visible" });
  assert.equal(await page.locator("#stepup-code").isVisible(), false, "no code field for a key");
  await page.click("#stepup-key");
  await page.locator("#stepup-dialog").waitFor({ state: "hidden" });
  await expectText(page, "#webauthn-empty", /No devices registered/);

  // And again for new recovery codes: cancelling changes nothing; the app's code does it.
  await page.click("#recovery-generate");
  await page.locator("#stepup-dialog").waitFor({ state: "visible" });
  await page.click("#stepup-cancel");
  await page.locator("#stepup-dialog").waitFor({ state: "hidden" });
  await expectText(page, "#recovery-section [role=alert]", /Nothing was changed/);
  await page.click("#recovery-generate");
  await page.locator("#stepup-dialog").waitFor({ state: "visible" });
  await page.selectOption("#stepup-method", "totp");
  await page.fill("#stepup-code", demo.totpNow(secret));
  await page.click("#stepup-verify");
  await page.locator("#stepup-dialog").waitFor({ state: "hidden" });
  await page.locator("#recovery-codes li").first().waitFor({ state: "visible" });
  const newCodes = await page.locator("#recovery-codes li").allInnerTexts();
  assert.equal(newCodes.length, 10);
  assert.equal(oldCodes.length, 10);
  assert.ok(!newCodes.some((c) => oldCodes.includes(c)), "a new set");
  assert.equal(await page.locator("#recovery-section [role=alert]").innerText(), "", "the cancellation notice is cleared");
  assertNoPageErrors(demo);
});
