// The authenticator app (TOTP): the secret shown on the Security tab, codes made with otplib for
// the demo's clock, a wrong code refused, sign-in with a code, and the same code refused again.

import assert from "node:assert/strict";
import { assertNoPageErrors, chooseMethod, enableTotp, expectPath, expectText, shot, signIn, signOut, submitSigninCode, useDemo, wrongCode } from "./helpers.mjs";

const scenario = useDemo();

scenario("authenticator app: enable with a code, sign in with the next, a used code is refused", "totp", async (demo) => {
  const { page, email } = await demo.newUser("tom");
  await page.goto(`${demo.url}/security`);
  await expectText(page, "#totp-state", /Off/);

  // Turning the switch on shows the QR code and the secret.
  await page.locator("#totp-toggle").check();
  await page.locator("#totp-secret").waitFor({ state: "visible" });
  await page.locator("#totp-qr svg").waitFor({ state: "visible" });
  const secret = (await page.locator("#totp-secret").innerText()).replace(/\s+/g, "");
  assert.match(secret, /^[A-Z2-7]{32}$/, "a 20-byte base32 secret");
  await shot(page, "security-totp-setup");

  // A wrong code is refused in the section, and the switch stays in setup.
  await page.fill("#totp-code", wrongCode(demo.totpNow(secret), 500_000));
  await page.click("#totp-submit");
  await expectText(page, "#totp-section [role=alert]", /That code is not right\./);
  assert.equal(await page.locator("#totp-setup").isVisible(), true, "still in setup");

  // The right one turns it on.
  const before = await demo.lastMailId();
  const enrolCode = demo.totpNow(secret);
  await page.fill("#totp-code", enrolCode);
  await page.click("#totp-submit");
  await page.locator("#totp-setup").waitFor({ state: "hidden" });
  await expectText(page, "#totp-state", /On/);
  assert.equal(await page.locator("#totp-toggle").isChecked(), true);
  assert.equal(await page.locator("#totp-section [role=alert]").innerText(), "", "the old error is cleared");
  await demo.waitForMail({ to: email, subject: /sign-in method was added/i, after: before });
  await shot(page, "security-totp");

  // The code that turned it on cannot sign in (the clock not moved): it was used.
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  await submitSigninCode(page, "totp", enrolCode);
  await expectText(page, "#signin-error", /That code was already used/);

  // Sign in with the code of the next step.
  await demo.advance(30);
  await chooseMethod(page, "totp");
  await expectText(page, "#code-label", /authenticator app/i);
  await shot(page, "signin-2fa-totp");
  const code = demo.totpNow(secret);
  await submitSigninCode(page, "totp", code);
  await expectPath(page, "/orders");

  // The same code again (the clock not moved): refused on screen, still on the 2FA step.
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  await submitSigninCode(page, "totp", code);
  await expectText(page, "#signin-error", /That code was already used/);
  await shot(page, "signin-2fa-totp-replayed");
  assert.equal(new URL(page.url()).pathname, "/signin/2fa", "not signed in");
  const orders = await page.request.get(`${demo.url}/orders`, { maxRedirects: 0 });
  assert.equal(orders.status(), 303, "/orders is not reachable");
  assert.match(orders.headers().location, /\/signin/);

  // A fresh code still works after the refusal.
  await demo.advance(30);
  await submitSigninCode(page, "totp", demo.totpNow(secret));
  await expectPath(page, "/orders");
  assertNoPageErrors(demo);
});

scenario("authenticator app: too many wrong codes lock the sign-in, then it opens again", "totp-lockout", async (demo) => {
  const { page, email } = await demo.newUser("lou");
  await page.goto(`${demo.url}/security`);
  const secret = await enableTotp(page, demo);
  await signOut(page);
  await demo.advance(30);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  await chooseMethod(page, "totp");

  // Wrong codes until the attempts run out (twofa's default: 10 in a row).
  let message = "";
  let tries = 0;
  while (!/Too many attempts/.test(message) && tries < 15) {
    tries += 1;
    await page.fill("#code-input", wrongCode(demo.totpNow(secret), 500_000));
    await page.click("#verify");
    await page.waitForFunction(() => !document.querySelector("#verify").disabled);
    message = await expectText(page, "#signin-error", /That code is not right\.|Too many attempts/);
  }
  assert.match(message, /^Too many attempts: try again in \d+ seconds?\.$/, `locked after ${tries} tries`);
  assert.ok(tries >= 10 && tries <= 12, `locked after ${tries} wrong codes`);
  const wait = Number(message.match(/(\d+) second/)[1]);
  assert.ok(wait > 0 && wait <= 60, `a wait of ${wait} s`);
  await shot(page, "signin-2fa-locked");

  // Even the right code is refused while locked.
  await page.fill("#code-input", demo.totpNow(secret));
  await page.click("#verify");
  await expectText(page, "#signin-error", /Too many attempts/);
  assert.equal(new URL(page.url()).pathname, "/signin/2fa");

  // After the wait, the right code of a new step signs in.
  await demo.advance(wait + 30);
  await page.fill("#code-input", demo.totpNow(secret));
  await page.click("#verify");
  await expectPath(page, "/orders");
  assertNoPageErrors(demo);
});
