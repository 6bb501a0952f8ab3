// Email codes: turn on with the code read from the mailbox (an expired code refused first), sign
// in with a mailed code (a wrong code and an early resend refused), and a sign-in code submitted
// after it expired refused.

import assert from "node:assert/strict";
import { assertNoPageErrors, chooseMethod, codeIn, expectPath, expectText, shot, signIn, signOut, useDemo, wrongCode } from "./helpers.mjs";

const scenario = useDemo();

scenario("email codes: enable from the mailbox, sign in with a mailed code, wrong and expired codes refused", "email", async (demo) => {
  const { page, email } = await demo.newUser("emma");
  await page.goto(`${demo.url}/security`);
  await expectText(page, "#email-state", /Off/);

  // Turn on: the address form opens with the account's address.
  await page.locator("#email-toggle").check();
  await page.locator("#email-address").waitFor({ state: "visible" });
  assert.equal(await page.inputValue("#email-address"), email, "prefilled with the account's address");
  let last = await demo.lastMailId();
  await page.click("#email-submit");
  await expectText(page, "#email-sent", new RegExp(`sent a code to ${email.replace(/[.+]/g, "\\$&")}\\. It expires in 10 minutes\\.`));
  const stale = await demo.waitForMail({ to: email, subject: /confirm your email address/i, after: last });
  const staleCode = codeIn(stale);
  assert.match(stale.html, new RegExp(staleCode), "the code is in the HTML part too");

  // The code expires after 10 minutes: refused on screen.
  await demo.advance(601);
  await page.fill("#email-code", staleCode);
  await page.click("#email-code-submit");
  await expectText(page, "#email-section [role=alert]", /That code has expired/);
  assert.equal(await page.locator("#email-toggle").isChecked(), true, "still in setup");
  assert.match(await page.locator("#email-state").innerText(), /Enter the address/);

  // Ask again, enter the new code: on.
  last = await demo.lastMailId();
  await page.click("#email-submit");
  // (the page empties the code field once the new code is sent)
  await page.waitForFunction(() => document.querySelector("#email-code").value === "");
  assert.equal(await page.locator("#email-section [role=alert]").innerText(), "", "the old error is cleared");
  await expectText(page, "#email-sent", /It expires in 10 minutes\./);
  const fresh = await demo.waitForMail({ to: email, subject: /confirm your email address/i, after: last });
  await page.fill("#email-code", wrongCode(codeIn(fresh)));
  await page.click("#email-code-submit");
  await expectText(page, "#email-section [role=alert]", /That code is not right\./);
  last = await demo.lastMailId();
  await page.fill("#email-code", codeIn(fresh));
  await page.click("#email-code-submit");
  await expectText(page, "#email-state", new RegExp(`On: sign-in codes go to ${email.replace(/[.+]/g, "\\$&")}`));
  await page.locator("#email-code-form").waitFor({ state: "hidden" });
  assert.equal(await page.locator("#email-section [role=alert]").innerText(), "", "the old error is cleared");
  await expectText(page, "#email-addresses li[data-method-id]", new RegExp(email.replace(/[.+]/g, "\\$&")));
  await demo.waitForMail({ to: email, subject: /sign-in method was added/i, after: last });
  await shot(page, "security-email");

  // Sign in with a mailed code; a wrong one first, and an early second request.
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  await chooseMethod(page, "email");
  await page.locator("#send-code").waitFor({ state: "visible" });
  last = await demo.lastMailId();
  await page.click("#send-code");
  await expectText(page, "#signin-hint", /We sent a code to e\*{3}@example\.com\. It expires in 10 minutes\./);
  const login = await demo.waitForMail({ to: email, subject: /your sign-in code/i, after: last });
  await shot(page, "signin-2fa-email");
  await page.click("#send-code");
  await expectText(page, "#signin-error", /Please wait \d+ seconds? before asking for a new code\./);
  await page.fill("#code-input", wrongCode(codeIn(login)));
  await page.click("#verify");
  await expectText(page, "#signin-error", /That code is not right\./);
  assert.equal(new URL(page.url()).pathname, "/signin/2fa");
  await page.fill("#code-input", codeIn(login));
  await page.click("#verify");
  await expectPath(page, "/orders");

  // The mailbox page, with the codes in it.
  await page.goto(`${demo.url}/mail`);
  await expectText(page, ".mail-item .mail-subject", /your sign-in code/i);
  assert.ok((await page.locator(".mail-item").count()) >= 4, "every message is listed");
  assert.match(await page.locator(".mail-item .mail-text").first().innerText(), new RegExp(codeIn(login)));
  const frames = page.locator(".mail-item iframe.mail-html");
  for (let i = 0; i < (await frames.count()); i++) {
    const body = await frames.nth(i).contentFrame().locator("body").innerText();
    assert.match(body, /twofa demo/, `message ${i + 1}'s HTML part is shown`);
  }
  await shot(page, "mailbox");

  // A sign-in code submitted after it expired is refused.
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/signin/2fa");
  await chooseMethod(page, "email");
  last = await demo.lastMailId();
  await page.click("#send-code");
  const late = await demo.waitForMail({ to: email, subject: /your sign-in code/i, after: last });
  await demo.advance(601);
  await page.fill("#code-input", codeIn(late));
  await page.click("#verify");
  await expectText(page, "#signin-error", /expired/i);
  await shot(page, "signin-2fa-email-expired");
  assert.equal(new URL(page.url()).pathname, "/signin/2fa", "not signed in");
  assertNoPageErrors(demo);
});
