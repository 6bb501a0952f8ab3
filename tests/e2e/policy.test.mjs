// The 2FA policy: an account that creates an order must have a second factor. Without one it is
// sent to the Security tab with the reason; with one, it may not turn off its last method.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  assertNoPageErrors,
  enableTotp,
  expectPath,
  expectText,
  expectToggle,
  recordFailure,
  SCENARIO,
  shot,
  signIn,
  signOut,
  signUp,
  startDemo,
  uniqueEmail,
} from "./helpers.mjs";

let demo;
before(async () => {
  demo = await startDemo();
}, SCENARIO);
after(async () => {
  await demo?.close();
});

test("an order makes 2FA required: sent to Security with the reason; the last method stays", SCENARIO, async () => {
  await recordFailure(demo, "policy", async () => {
    const page = await demo.newPage();
    const email = uniqueEmail("paul");
    await signUp(page, demo.url, email);
    await expectPath(page, "/orders");
    await expectText(page, "#orders-empty", /No orders yet/);

    // Without 2FA, no attention on the Security tab yet about a requirement.
    await page.goto(`${demo.url}/security`);
    assert.doesNotMatch(await page.locator("#attention").innerText().catch(() => ""), /required/i);

    // The first order: off to the Security tab, with the reason.
    await page.goto(`${demo.url}/orders`);
    await page.click("#create-order");
    await expectPath(page, "/security");
    await expectText(page, "#attention", /2FA is required for accounts that have created orders/);
    await expectText(page, "#attention", /turn on a method/i);
    await shot(page, "security-attention");

    // The orders page (and signing in again) leads back to the Security tab until 2FA is on.
    await page.goto(`${demo.url}/orders`);
    await expectPath(page, "/security");
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
});
