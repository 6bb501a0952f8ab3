// /signup: creates the account and signs it in.
import { busy, go, post, say } from "./common.js";

const form = document.getElementById("signup-form");
const error = document.getElementById("signup-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  say(error);
  await busy(document.getElementById("signup-submit"), async () => {
    try {
      const { next } = await post("/api/signup", {
        email: document.getElementById("signup-email").value,
        password: document.getElementById("signup-password").value,
      });
      go(next);
    } catch (e) {
      say(error, e.message);
    }
  });
});
