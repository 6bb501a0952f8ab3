// /signin/2fa: the second factor. The user picks one of the methods they set up; codes are typed,
// a security key answers the challenge through the browser.
import { busy, go, pageState, post, say, show } from "./common.js";
import { getAssertion } from "./webauthn.js";

const { methods = [], webauthnOptions = null, rememberDays = 0 } = pageState;
const error = document.getElementById("signin-error");
const hint = document.getElementById("signin-hint");
const codeForm = document.getElementById("code-form");
const codeInput = document.getElementById("code-input");
const codeLabel = document.getElementById("code-label");
const sendCode = document.getElementById("send-code");
const useKey = document.getElementById("use-key");
const buttons = [...document.querySelectorAll("[data-kind]")];
const remember = document.getElementById("remember-device");

const LABELS = {
  totp: ["Code from your authenticator app", "Open your authenticator app and enter the 6-digit code it shows."],
  email: ["Code from the email", "We email you a 6-digit code. Ask for it, then enter it here."],
  recovery: ["Recovery code", "Enter one of your recovery codes (xxxxx-xxxxx). Each works once."],
  webauthn: [null, "Use the security key or device you registered on this browser."],
};

let kind = null;

const minutes = (seconds) => {
  const n = Math.max(1, Math.round(seconds / 60));
  return `${n} minute${n === 1 ? "" : "s"}`;
};

function choose(next) {
  kind = next;
  for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.kind === kind));
  say(error);
  const [label, help] = LABELS[kind];
  say(hint, help);
  show(codeForm, kind !== "webauthn");
  show(sendCode, kind === "email");
  show(useKey, kind === "webauthn");
  if (label) {
    codeLabel.textContent = label;
    codeInput.value = "";
    codeInput.inputMode = kind === "recovery" ? "text" : "numeric";
  }
}

/** A refusal: a sign-in that expired sends the user back to the password. */
function refused(e) {
  say(error, e.message);
  if (e.body?.restart || e.error === "no_pending_signin") {
    error.append(" ");
    const link = document.createElement("a");
    link.href = "/signin";
    link.textContent = "Sign in again";
    error.append(link);
  }
}

async function verify(value) {
  const { next } = await post("/api/signin/2fa/verify", { kind, value, remember: remember.checked });
  go(next);
}

for (const button of buttons) {
  if (!methods.includes(button.dataset.kind)) continue;
  if (button.dataset.kind === "webauthn" && !webauthnOptions) continue;
  show(button);
  button.addEventListener("click", () => {
    choose(button.dataset.kind);
    (kind === "webauthn" ? useKey : kind === "email" ? sendCode : codeInput).focus();
  });
}

sendCode.addEventListener("click", () =>
  busy(sendCode, async () => {
    say(error);
    try {
      const sent = await post("/api/signin/2fa/send-code");
      say(hint, `We sent a code to ${sent.sentTo.join(", ")}. It expires in ${minutes(sent.expiresAt - sent.now)}.`);
      codeInput.focus();
    } catch (e) {
      refused(e);
    }
  }),
);

codeForm.addEventListener("submit", (event) => {
  event.preventDefault();
  return busy(document.getElementById("verify"), async () => {
    say(error);
    try {
      await verify(codeInput.value);
    } catch (e) {
      refused(e);
      codeInput.select();
    }
  });
});

useKey.addEventListener("click", () =>
  busy(useKey, async () => {
    say(error);
    try {
      await verify(await getAssertion(webauthnOptions));
    } catch (e) {
      refused(e);
    }
  }),
);

// "Don't ask again on this browser", when the demo offers it (DEMO_REMEMBER_DAYS > 0).
if (rememberDays > 0) {
  const days = Math.round(rememberDays * 10) / 10;
  document.getElementById("remember-days").textContent = `${days} day${days === 1 ? "" : "s"}`;
  show(document.getElementById("remember-field"));
}

const first = buttons.find((b) => !b.hidden);
if (first) choose(first.dataset.kind);
