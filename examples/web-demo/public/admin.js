// /admin: an administrator resets the second factors of a user who lost them all. The server
// checks the admin password and calls twofa's admin handle (resetUser), which mails the user.
import { busy, post, say } from "./common.js";

const $ = (id) => document.getElementById(id);

$("reset-form").addEventListener("submit", (event) => {
  event.preventDefault();
  return busy($("admin-reset"), async () => {
    say($("admin-info"));
    say($("admin-error"));
    try {
      const done = await post("/api/admin/reset", {
        password: $("admin-password").value,
        email: $("admin-email").value,
        actor: $("admin-actor").value,
        reason: $("admin-reason").value,
      });
      const removed = `${done.methodsRemoved} method${done.methodsRemoved === 1 ? "" : "s"} removed`;
      const mailed = done.notices.sent ? "the user was emailed" : "the notice email could not be sent";
      say($("admin-info"), `2FA of ${done.email} was reset: ${removed}; ${mailed}.`);
    } catch (e) {
      say($("admin-error"), e.message);
    }
  });
});
