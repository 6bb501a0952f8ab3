// The admin reset: on /admin, with the admin password, an administrator resets the second
// factors of a user who lost them. A wrong password is refused. The user gets the email, and
// their Security tab shows the reset in the recent events, methods off.

import assert from "node:assert/strict";
import { assertNoPageErrors, enableTotp, expectText, expectToggle, shot, useDemo } from "./helpers.mjs";

const scenario = useDemo();

scenario("an administrator resets a user's 2FA: the user is emailed and sees it in the events", "admin", async (demo) => {
  const { page, email } = await demo.newUser("lost.phone");
  await page.goto(`${demo.url}/security`);
  await enableTotp(page, demo);
  const before = await demo.lastMailId();

  // /admin: a wrong password is refused.
  await page.goto(`${demo.url}/admin`);
  await page.fill("#admin-password", "not the password");
  await page.fill("#admin-email", email);
  await page.fill("#admin-actor", "Alex Admin");
  await page.fill("#admin-reason", "lost phone, identity checked by video call");
  await page.click("#admin-reset");
  await expectText(page, "#admin-error", /Wrong admin password\./);

  // The right one: the reset is done, and said so.
  await page.fill("#admin-password", demo.adminPassword);
  await page.click("#admin-reset");
  await expectText(page, "#admin-info", new RegExp(`2FA of ${email.replace(/\./g, "\\.")} was reset: 1 method removed; the user was emailed\\.`));
  await shot(page, "admin-reset");

  // The user's mail.
  const mail = await demo.waitForMail({ to: email, subject: /your two-factor methods were reset/, after: before });
  assert.match(mail.text, /Reason: lost phone, identity checked by video call/);

  // The user's Security tab: the app is off, the reset is in the events with who and why.
  await page.goto(`${demo.url}/security`);
  await expectToggle(page, "#totp-toggle", false);
  await expectText(page, '#events-list li[data-kind="admin_reset"]', /2FA reset by an administrator.*by Alex Admin: “lost phone, identity checked by video call”/s);
  await expectText(page, '#events-list li[data-kind="method_removed"]', /Sign-in method removed.*Authenticator app.*by an administrator's reset/s);
  await shot(page, "security-after-admin-reset");
  assertNoPageErrors(demo);
});
