// /signin: the password; then either signed in, or on to /signin/2fa for the second factor.
import { busy, go, post, say } from "./common.js";

const form = document.getElementById("signin-form");
const error = document.getElementById("signin-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  say(error);
  await busy(document.getElementById("signin-submit"), async () => {
    try {
      const { next } = await post("/api/signin", {
        email: document.getElementById("signin-email").value,
        password: document.getElementById("signin-password").value,
      });
      go(next);
    } catch (e) {
      say(error, e.message);
    }
  });
});
