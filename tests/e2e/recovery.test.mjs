// Recovery codes: generated after a first method, shown once and downloadable, one signs in once
// (a notice is mailed, the count drops), the same code again is refused.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { assertNoPageErrors, enableTotp, expectPath, expectText, shot, signIn, signOut, submitSigninCode, useDemo } from "./helpers.mjs";

const scenario = useDemo();

scenario("recovery codes: generate, download, sign in with one, the same one is refused", "recovery", async (demo) => {
  const { page, email } = await demo.newUser("rita");
  await page.goto(`${demo.url}/security`);

  // Before any method: recovery codes are refused with the reason.
  await expectText(page, "#recovery-state", /Set up a method first/);
  await page.click("#recovery-generate");
  await expectText(page, "#recovery-section [role=alert]", /Set up a method first/);
  assert.equal(await page.locator("#recovery-codes li").count(), 0);

  await enableTotp(page, demo);
  await expectText(page, "#recovery-state", /no recovery codes/);
  const before = await demo.lastMailId();
  await page.click("#recovery-generate");
  await page.locator("#recovery-codes li").first().waitFor({ state: "visible" });
  assert.equal(await page.locator("#recovery-section [role=alert]").innerText(), "", "the old error is cleared");
  const codes = (await page.locator("#recovery-codes li").allInnerTexts()).map((c) => c.trim());
  assert.equal(codes.length, 10, "ten codes");
  for (const code of codes) assert.match(code, /^[a-z0-9]{5}-[a-z0-9]{5}$/, `code ${code} looks like xxxxx-xxxxx`);
  assert.equal(new Set(codes).size, 10, "all different");
  await expectText(page, "#recovery-state", /You have 10 unused recovery codes/);
  await demo.waitForMail({ to: email, subject: /new recovery codes/i, after: before });
  await shot(page, "security-recovery-codes");

  // The download holds the same codes.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#recovery-download")]);
  assert.equal(download.suggestedFilename(), "twofa-demo-recovery-codes.txt");
  const text = readFileSync(await download.path(), "utf8");
  for (const code of codes) assert.ok(text.includes(code), `the download has ${code}`);

  // Reloading does not show them again.
  await page.reload();
  assert.equal(await page.locator("#recovery-result").isVisible(), false, "shown only once");

  // Sign in with one.
  const code = codes[3];
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  const mailBefore = await demo.lastMailId();
  await submitSigninCode(page, "recovery", code);
  await expectPath(page, "/orders");
  await expectText(page, "#flash", /recovery code: 9 left/);
  const used = await demo.waitForMail({ to: email, subject: /recovery code was used/i, after: mailBefore });
  assert.match(used.text, /9 codes are left/);
  await page.goto(`${demo.url}/security`);
  await expectText(page, "#recovery-state", /You have 9 unused recovery codes/);

  // The same code again: refused on screen.
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  await submitSigninCode(page, "recovery", code);
  await expectText(page, "#signin-error", /That code is not right|already used/);
  await shot(page, "signin-2fa-recovery-refused");
  assert.equal(new URL(page.url()).pathname, "/signin/2fa", "not signed in");

  // Another, unused code works (typed in capitals with spaces around: the user's way).
  await submitSigninCode(page, "recovery", ` ${codes[7].toUpperCase()} `);
  await expectPath(page, "/orders");
  assertNoPageErrors(demo);
});
