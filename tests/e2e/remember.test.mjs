// "Don't ask again on this browser" and the recent security events. Signing in with the box
// ticked stores a device token in an HttpOnly, SameSite=Strict cookie; the next sign-in on this
// browser skips the second factor. The Security tab lists the remembered browser (added,
// expires, last used) and the events (the sign-ins, the method, the browser remembered); after
// "Forget", the next sign-in asks for the second factor again and the cookie is gone. "Forget
// all" empties the list.

import assert from "node:assert/strict";
import { assertNoPageErrors, enableTotp, expectPath, expectText, shot, signIn, signOut, submitSigninCode, useDemo } from "./helpers.mjs";

const scenario = useDemo();

/** The device-token cookies the browser holds for the demo at `url`. */
async function deviceCookies(page, url) {
  return (await page.context().cookies(url)).filter((c) => c.name.startsWith("device-"));
}

scenario("remember this browser: no second factor next time, until it is forgotten; the events list it", "remember", async (demo) => {
  const { page, email } = await demo.newUser("rita");
  await page.goto(`${demo.url}/security`);
  await expectText(page, "#devices-empty", /No browser is remembered/);
  const secret = await enableTotp(page, demo);
  await signOut(page);

  // The second step offers "Don't ask again on this browser"; tick it.
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  await expectText(page, "#remember-field", /Don't ask again on this browser/);
  await expectText(page, "#remember-field", /For 30 days/);
  await page.locator("#remember-device").check();
  await shot(page, "signin-2fa-remember");
  await demo.advance(30);
  await submitSigninCode(page, "totp", demo.totpNow(secret));
  await expectPath(page, "/orders");
  const [cookie, ...others] = await deviceCookies(page, demo.url);
  assert.ok(cookie, "a device cookie is set");
  assert.equal(others.length, 0);
  assert.equal(cookie.httpOnly, true, "scripts cannot read the token");
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(await page.evaluate(() => document.cookie.includes("device-")), false);

  // Next time: the password alone.
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/orders", "no second factor on a remembered browser");

  // The Security tab: the browser, and the events newest first.
  await page.goto(`${demo.url}/security`);
  await expectText(page, "#devices-list li", /Browser remembered .* after Authenticator app/);
  await expectText(page, "#devices-list li", /Expires/);
  await expectText(page, "#devices-list li", /Last used/);
  await expectText(page, "#events-list li:nth-child(1)", /Signed in.*on a remembered browser, without a second factor/s);
  await expectText(page, "#events-list li:nth-child(2)", /Browser remembered.*Authenticator app/s);
  await expectText(page, "#events-list li:nth-child(3)", /Signed in.*Authenticator app/s);
  const kinds = await page.locator("#events-list li").evaluateAll((items) => items.map((li) => li.dataset.kind));
  assert.deepEqual(kinds.slice(0, 3), ["login_succeeded", "device_remembered", "login_succeeded"]);
  assert.ok(kinds.includes("method_added"), `the method added is listed: ${kinds}`);
  await expectText(page, '#events-list li[data-kind="method_added"]', /Sign-in method added.*Authenticator app/s);
  await shot(page, "security-remembered-browsers");

  // Forget it: the list empties, the event is there, and the next sign-in asks again.
  await page.locator("#devices-list li button", { hasText: "Forget" }).click();
  await expectText(page, "#devices-empty", /No browser is remembered/);
  await expectText(page, "#devices-info", /will ask for your second factor again/);
  await expectText(page, "#events-list li:nth-child(1)", /Remembered browsers forgotten.*by you/s);
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa", "the forgotten browser asks again");
  assert.deepEqual(await deviceCookies(page, demo.url), [], "the refused token's cookie is cleared");

  // A wrong code, then the right one with the box ticked again; "Forget all" empties the list.
  await submitSigninCode(page, "totp", demo.totpNow(secret) === "000000" ? "111111" : "000000");
  await expectText(page, "#signin-error", /That code is not right/);
  await page.locator("#remember-device").check();
  await demo.advance(30);
  await submitSigninCode(page, "totp", demo.totpNow(secret));
  await expectPath(page, "/orders");
  assert.equal((await deviceCookies(page, demo.url)).length, 1);
  await page.goto(`${demo.url}/security`);
  await expectText(page, '#events-list li[data-kind="login_failed"]', /Sign-in attempt refused.*Authenticator app.*wrong code/s);
  await page.click("#devices-forget-all");
  await expectText(page, "#confirm-dialog", /Forget all remembered browsers\?/);
  await page.click("#confirm-yes");
  await expectText(page, "#devices-empty", /No browser is remembered/);
  assert.equal(await page.locator("#devices-list li").count(), 0);
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa", "after Forget all, the second factor again");
  assertNoPageErrors(demo);
});
