// The 2FA policy: an account that creates an order must have a second factor. The Security tab
// gives the reason and the deadline: for the grace period (7 days) the account still works and
// signs in without one; after it, the account is sent to the Security tab to set one up. With a
// method, it may not turn off its last one.

import assert from "node:assert/strict";
import { assertNoPageErrors, enableTotp, expectPath, expectText, expectToggle, shot, signIn, signOut, useDemo } from "./helpers.mjs";

const scenario = useDemo();

scenario("an order makes 2FA required: the deadline, then sent to Security; the last method stays", "policy", async (demo) => {
  const { page, email } = await demo.newUser("paul");
  await expectPath(page, "/orders");
  await expectText(page, "#orders-empty", /No orders yet/);

  // Without 2FA, no attention on the Security tab yet about a requirement.
  await page.goto(`${demo.url}/security`);
  assert.doesNotMatch(await page.locator("#attention").innerText().catch(() => ""), /required/i);

  // The first order: off to the Security tab, with the reason and the deadline (7 days on).
  await page.goto(`${demo.url}/orders`);
  await page.click("#create-order");
  await expectPath(page, "/security");
  await expectText(page, "#attention", /2FA is required for accounts that have created orders/);
  await expectText(page, "#attention", /2FA required from .+; until then you can still sign in without it\./);
  const deadline = await page.locator("#attention-reason time").getAttribute("datetime");
  const inSevenDays = (demo.now() + 7 * 86400) * 1000;
  assert.ok(Math.abs(Date.parse(deadline) - inSevenDays) < 60_000, `the deadline ${deadline} is 7 days away`);
  await expectText(page, "#attention", /turn on a method/i);
  await shot(page, "security-grace-period");

  // Until then the orders page stays open, and signing in again needs no second factor.
  await page.goto(`${demo.url}/orders`);
  await expectPath(page, "/orders");
  await expectText(page, "#orders li", /Order #1/);
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/orders", "a sign-in in the grace period goes on");

  // After the deadline, the orders page (and signing in again) leads to the Security tab until
  // 2FA is on.
  await demo.advance(7 * 86400 + 1);
  await page.goto(`${demo.url}/orders`);
  await expectPath(page, "/security");
  await expectText(page, "#attention", /2FA is required for accounts that have created orders\. Set it up to continue/);
  assert.doesNotMatch(await page.locator("#attention").innerText(), /until then/);
  await shot(page, "security-attention");
  await signOut(page);
  assert.equal(await signIn(page, demo.url, email), "/security", "a new sign-in goes to Security first");
  await expectText(page, "#attention", /2FA is required/);

  // Turn on the authenticator app: the order is there, the requirement is met.
  await enableTotp(page, demo);
  await page.waitForFunction(() => !/Set it up to continue/.test(document.querySelector("#attention")?.innerText ?? ""));
  await page.goto(`${demo.url}/orders`);
  await expectPath(page, "/orders");
  await expectText(page, "#orders li", /Order #1/);

  // Turning off the only method is refused, in plain words, and it stays on.
  await page.goto(`${demo.url}/security`);
  await page.locator("#totp-toggle").uncheck();
  await page.locator("#confirm-dialog").waitFor({ state: "visible" });
  await expectText(page, "#confirm-dialog", /Turn off the authenticator app\?/);
  await page.click("#confirm-yes");
  await expectText(page, "#totp-section [role=alert]", /2FA is required for your account: keep at least one method\./);
  assert.equal(await page.locator("#totp-toggle").isChecked(), true, "the switch stays on");
  await expectText(page, "#totp-state", /On/);
  await shot(page, "security-last-method-refused");
  await page.reload();
  assert.equal(await page.locator("#totp-toggle").isChecked(), true, "still on after a reload");

  // Cancelling the confirmation leaves it on too, with nothing sent to the server.
  await page.locator("#totp-toggle").uncheck();
  await page.locator("#confirm-dialog").waitFor({ state: "visible" });
  await page.click("#confirm-no");
  await page.locator("#confirm-dialog").waitFor({ state: "hidden" });
  await expectToggle(page, "#totp-toggle", true); // set back on the dialog's close event
  assert.equal(await page.locator("#totp-section [role=alert]").innerText(), "");
  assertNoPageErrors(demo);
});
