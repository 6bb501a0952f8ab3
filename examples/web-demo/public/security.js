// /security: the Security tab. It renders the user's twofa status (methods, policy, advice) and
// drives each method's setup through the JSON endpoints. Any change may be refused with
// step_up_required (the proof of a recent second factor expired): the "Confirm it's you" dialog
// then re-verifies the user and the change is tried again. Below the methods: the remembered
// browsers (each can be forgotten) and the account's recent security events.
import { ApiError, busy, getJson, go, h, pageState, post, say, show, timeElement } from "./common.js";
import { createCredential, getAssertion } from "./webauthn.js";

const $ = (id) => document.getElementById(id);

/** The server's view ({email, now, status, events}) and what exists only in this page. */
let view = pageState;
const local = {
  totpSetup: null, // {secret, qrSvg}: an authenticator app being set up
  emailOpen: false, // the address form is open
  emailSentTo: null, // a code was sent to this address
  webauthnOpen: false, // the "Add New" form is open
  codes: null, // recovery codes just generated (shown once)
};

const KIND_NAMES = { totp: "Authenticator app", email: "Email code", webauthn: "Security key", recovery: "Recovery code" };

// The "Confirm it's you" dialog

/** The user closed "Confirm it's you": the change is not made. */
class Cancelled extends Error {
  constructor() {
    super("Nothing was changed: confirm it's you to make this change.");
  }
}

const stepUpUi = {
  dialog: $("stepup-dialog"),
  form: $("stepup-form"),
  method: $("stepup-method"),
  code: $("stepup-code"),
  codeField: $("stepup-code-field"),
  codeLabel: $("stepup-code-label"),
  sendCode: $("stepup-send-code"),
  key: $("stepup-key"),
  verify: $("stepup-verify"),
  info: $("stepup-info"),
  error: $("stepup-error"),
};
let stepUpChallenge = null;
let stepUpDone = null; // resolves the pending stepUp() with true (verified) or false
let stepUpVerified = false;

function stepUpKind() {
  return stepUpUi.method.value;
}

function updateStepUpControls() {
  const kind = stepUpKind();
  const ui = stepUpUi;
  show(ui.codeField, kind !== "webauthn");
  show(ui.verify, kind !== "webauthn");
  show(ui.sendCode, kind === "email");
  show(ui.key, kind === "webauthn");
  ui.codeLabel.textContent =
    kind === "recovery" ? "Recovery code" : kind === "email" ? "Code from the email" : "Code from your authenticator app";
  ui.code.inputMode = kind === "recovery" ? "text" : "numeric";
  say(ui.info);
  say(ui.error);
}

/** Starts a sign-in challenge for the dialog. */
async function beginStepUp() {
  const challenge = await post("/api/stepup/begin");
  stepUpChallenge = challenge;
  if (!challenge.required) return false;
  const kinds = challenge.methods.filter((k) => k !== "webauthn" || challenge.webauthnOptions);
  stepUpUi.method.replaceChildren(...kinds.map((k) => new Option(KIND_NAMES[k], k)));
  updateStepUpControls();
  return true;
}

/** Opens "Confirm it's you"; resolves to true once verified, false if the user cancelled. */
async function stepUp() {
  if (stepUpDone) return new Promise((resolve) => stepUpUi.dialog.addEventListener("close", () => resolve(stepUpVerified), { once: true }));
  if (!(await beginStepUp())) return true; // no method to confirm with: nothing to ask
  stepUpVerified = false;
  stepUpUi.code.value = "";
  const result = new Promise((resolve) => {
    stepUpDone = resolve;
  });
  stepUpUi.dialog.showModal();
  return result;
}

stepUpUi.dialog.addEventListener("close", () => {
  const done = stepUpDone;
  stepUpDone = null;
  done?.(stepUpVerified);
});

async function stepUpVerify(value) {
  try {
    await post("/api/stepup/verify", { kind: stepUpKind(), value });
    stepUpVerified = true;
    stepUpUi.dialog.close();
  } catch (e) {
    if (e.body?.restart) {
      // The challenge expired while the dialog was open: start a fresh one.
      await beginStepUp().catch(() => {});
    }
    say(stepUpUi.error, e.message);
  }
}

stepUpUi.method.addEventListener("change", updateStepUpControls);
$("stepup-cancel").addEventListener("click", () => stepUpUi.dialog.close());
stepUpUi.sendCode.addEventListener("click", () =>
  busy(stepUpUi.sendCode, async () => {
    say(stepUpUi.error);
    try {
      const sent = await post("/api/stepup/send-code");
      say(stepUpUi.info, `We sent a code to ${sent.sentTo.join(", ")}.`);
      stepUpUi.code.focus();
    } catch (e) {
      say(stepUpUi.error, e.message);
    }
  }),
);
stepUpUi.form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (stepUpKind() === "webauthn") return stepUpUi.key.click();
  return busy(stepUpUi.verify, () => stepUpVerify(stepUpUi.code.value));
});
stepUpUi.key.addEventListener("click", () =>
  busy(stepUpUi.key, async () => {
    say(stepUpUi.error);
    try {
      await stepUpVerify(await getAssertion(stepUpChallenge.webauthnOptions));
    } catch (e) {
      say(stepUpUi.error, e.message);
    }
  }),
);

/** Runs a change; when the server asks for a step-up, confirms it's the user and runs it again. */
async function withStepUp(task) {
  try {
    return await task();
  } catch (e) {
    if (!(e instanceof ApiError) || e.error !== "step_up_required") throw e;
    if (!(await stepUp())) throw new Cancelled();
    return await task();
  }
}

// Other dialogs

/** Asks to confirm; resolves to true for "yes". */
function confirmDialog({ title, text, yes }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = yes;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    // Answered on the button's click (before the dialog closes), or by closing it (Escape).
    const buttons = [$("confirm-yes"), $("confirm-no")];
    const answer = (yes) => {
      for (const b of buttons) b.removeEventListener("click", onClick);
      dialog.removeEventListener("close", onClose);
      resolve(yes);
    };
    const onClick = (event) => answer(event.currentTarget.id === "confirm-yes");
    const onClose = () => answer(dialog.returnValue === "yes");
    for (const b of buttons) b.addEventListener("click", onClick);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
  });
}

let renaming = null; // the method being renamed
$("rename-cancel").addEventListener("click", () => $("rename-dialog").close());
$("rename-form").addEventListener("submit", (event) => {
  event.preventDefault();
  return busy($("rename-save"), async () => {
    say($("rename-error"));
    try {
      await withStepUp(() => post("/api/methods/rename", { methodId: renaming.id, label: $("rename-input").value }));
      $("rename-dialog").close();
      await refresh();
    } catch (e) {
      say($("rename-error"), e.message);
    }
  });
});

function openRename(method) {
  renaming = method;
  $("rename-input").value = method.label;
  say($("rename-error"));
  $("rename-dialog").showModal();
  $("rename-input").select();
}

// Shared behaviour

/** Runs a section's action, showing its failure in the section's alert. */
async function attempt(errorElement, task, onFailure = () => {}) {
  say(errorElement);
  try {
    await task();
  } catch (e) {
    onFailure(e);
    if (e instanceof ApiError && e.status === 401 && e.body?.next) return go(e.body.next);
    say(errorElement, e.message);
  }
}

/** Turns a method's switch off: asks `question` ({title, text}), then runs `remove`, its failure
 * shown in `errorElement`; the switch goes back on if the user says no or `remove` fails.
 * Resolves to whether the user said yes. */
async function turnOff(toggle, errorElement, question, remove) {
  const yes = await confirmDialog({ ...question, yes: "Turn off" });
  if (yes) await attempt(errorElement, remove, () => (toggle.checked = true));
  else toggle.checked = true;
  return yes;
}

/** Reloads the status from the server and renders the page. */
async function refresh() {
  view = await getJson("/api/security");
  render();
}

const methodsOf = (kind) => view.status.methods.filter((m) => m.kind === kind);
const used = (m) => (m.lastUsed ? ["last used ", timeElement(m.lastUsed)] : ["not used yet"]);
const notified = (notices) =>
  notices?.sent ? " A confirmation was emailed to you." : notices?.failed?.length ? " (The confirmation email could not be sent.)" : "";

// Attention

const ADVICE = {
  enable_two_factor: "To continue, turn on a method below. Please set up at least two methods, so that losing one does not lock you out.",
  add_second_method: "Please set up at least two methods, so that losing one does not lock you out.",
  add_non_webauthn_method:
    "Security devices work only on the browser where they were registered: add the authenticator app or email verification too.",
  add_stronger_method: "Email codes are the easiest method to intercept: add the authenticator app or a security device.",
  generate_recovery_codes: "Generate recovery codes and keep them somewhere safe, in case you lose your other methods.",
  no_notice_address: "We have no address to send security notices to.",
  device_flagged: "A security device was flagged as possibly cloned: remove it, and register it again if it is yours.",
};

function renderAttention() {
  const { twoFactorRequired, compliant, recommendations, warnings, enrollmentDeadline } = view.status;
  // twofa's deadline: until then (the grace period) sign-in goes on without a second factor.
  const inGrace = !compliant && enrollmentDeadline != null && view.now < enrollmentDeadline;
  const reason = !twoFactorRequired
    ? []
    : [
        "2FA is required for accounts that have created orders.",
        compliant
          ? ""
          : inGrace
            ? [" 2FA required from ", timeElement(enrollmentDeadline), "; until then you can still sign in without it."]
            : " Set it up to continue using your account.",
      ];
  $("attention-reason").replaceChildren(...reason.flat());
  show($("attention-reason"), reason.length > 0);
  const advice = [...recommendations, ...warnings].map((r) => ADVICE[r] ?? r);
  $("attention-advice").replaceChildren(...advice.map((a) => h("li", {}, a)));
  show($("attention"), Boolean(reason.length || advice.length));
}

// Authenticator app

const totpToggle = $("totp-toggle");

function renderTotp() {
  const [method] = methodsOf("totp");
  totpToggle.checked = Boolean(method || local.totpSetup);
  if (method) $("totp-state").replaceChildren("On · added ", timeElement(method.created), " · ", ...used(method));
  else $("totp-state").textContent = local.totpSetup ? "Scan the QR code, then enter a code to finish." : "Off.";
  const setup = !method && local.totpSetup;
  show($("totp-setup"), Boolean(setup));
  if (setup && $("totp-secret").textContent !== setup.secret) {
    $("totp-qr").innerHTML = setup.qrSvg; // the core's SVG, without its XML declaration
    $("totp-secret").textContent = setup.secret;
    $("totp-code").value = "";
  }
}

totpToggle.addEventListener("change", async () => {
  const [method] = methodsOf("totp");
  const error = $("totp-error");
  say($("totp-info"));
  await busy(totpToggle, async () => {
    if (totpToggle.checked) {
      await attempt(
        error,
        async () => {
          local.totpSetup = await withStepUp(() => post("/api/totp/begin"));
          renderTotp();
          $("totp-qr").scrollIntoView({ block: "nearest" });
        },
        () => (totpToggle.checked = false),
      );
    } else if (!method) {
      local.totpSetup = null; // a setup not finished: just put it away
      say(error);
      renderTotp();
    } else {
      const question = {
        title: "Turn off the authenticator app?",
        text: "You will no longer be able to sign in with codes from your authenticator app.",
      };
      await turnOff(totpToggle, error, question, async () => {
        await withStepUp(() => post("/api/methods/remove", { methodId: method.id }));
        await refresh();
      });
    }
  });
});

$("totp-form").addEventListener("submit", (event) => {
  event.preventDefault();
  return busy($("totp-submit"), () =>
    attempt($("totp-error"), async () => {
      const added = await withStepUp(() => post("/api/totp/confirm", { code: $("totp-code").value }));
      local.totpSetup = null;
      await refresh();
      say($("totp-info"), `The authenticator app is on.${notified(added.notices)}`);
      totpToggle.focus();
    }),
  );
});

// Email verification

const emailToggle = $("email-toggle");

function renderEmail() {
  const methods = methodsOf("email");
  emailToggle.checked = methods.length > 0 || local.emailOpen;
  $("email-state").textContent = methods.length
    ? `On: sign-in codes go to ${methods.map((m) => m.label).join(", ")}.`
    : local.emailOpen
      ? "Enter the address that should receive your sign-in codes."
      : "Off.";
  $("email-addresses").replaceChildren(
    ...methods.map((m) =>
      h("li", { dataset: { methodId: m.id } }, h("strong", {}, m.label), " · added ", timeElement(m.created), " · ", ...used(m)),
    ),
  );
  show($("email-add-another"), methods.length > 0 && !local.emailOpen);
  show($("email-form"), local.emailOpen);
  show($("email-code-form"), local.emailOpen && Boolean(local.emailSentTo));
}

function openEmailForm() {
  local.emailOpen = true;
  if (!$("email-address").value && !methodsOf("email").length) $("email-address").value = view.email ?? "";
  renderEmail();
  $("email-address").focus();
}

emailToggle.addEventListener("change", async () => {
  const methods = methodsOf("email");
  const error = $("email-error");
  say(error);
  say($("email-info"));
  if (emailToggle.checked) return openEmailForm();
  if (!methods.length) {
    Object.assign(local, { emailOpen: false, emailSentTo: null });
    return renderEmail();
  }
  await busy(emailToggle, async () => {
    const question = {
      title: "Turn off email verification?",
      text: `Sign-in codes will no longer be sent to ${methods.map((m) => m.label).join(", ")}.`,
    };
    const confirmed = await turnOff(emailToggle, error, question, async () => {
      for (const m of methods) await withStepUp(() => post("/api/methods/remove", { methodId: m.id }));
      Object.assign(local, { emailOpen: false, emailSentTo: null });
    });
    if (confirmed) await refresh();
  });
});

$("email-add-another").addEventListener("click", () => {
  $("email-address").value = "";
  openEmailForm();
});

$("email-form").addEventListener("submit", (event) => {
  event.preventDefault();
  return busy($("email-submit"), () =>
    attempt($("email-error"), async () => {
      const sent = await withStepUp(() => post("/api/email/begin", { address: $("email-address").value }));
      local.emailSentTo = sent.sentTo[0];
      renderEmail();
      say($("email-sent"), `We sent a code to ${local.emailSentTo}. It expires in ${Math.max(1, Math.round((sent.expiresAt - sent.now) / 60))} minutes.`);
      $("email-code").value = "";
      $("email-code").focus();
    }),
  );
});

$("email-code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  return busy($("email-code-submit"), () =>
    attempt($("email-error"), async () => {
      const added = await withStepUp(() => post("/api/email/confirm", { code: $("email-code").value }));
      Object.assign(local, { emailOpen: false, emailSentTo: null });
      $("email-address").value = "";
      await refresh();
      say($("email-info"), `Email verification is on.${notified(added.notices)}`);
      emailToggle.focus();
    }),
  );
});

// Web Authentication

function renderWebauthn() {
  const devices = methodsOf("webauthn");
  $("webauthn-devices").replaceChildren(
    ...devices.map((m) => {
      const rename = h("button", { type: "button", class: "rename", "aria-label": `Rename ${m.label}` }, "Rename");
      const remove = h("button", { type: "button", class: "remove danger", "aria-label": `Remove ${m.label}` }, "Remove");
      rename.addEventListener("click", () => openRename(m));
      remove.addEventListener("click", () => removeDevice(m));
      return h(
        "li",
        { class: "device", dataset: { methodId: m.id } },
        h(
          "div",
          { class: "device-info" },
          h("strong", { class: "device-name" }, m.label),
          h("span", { class: "device-added" }, "Added ", timeElement(m.created)),
          h("span", { class: "device-last-used" }, m.lastUsed ? ["Last used ", timeElement(m.lastUsed)] : "Never used"),
          m.flagged ? h("span", { class: "device-flagged" }, "Flagged: possibly cloned") : null,
        ),
        h("div", { class: "device-actions" }, rename, remove),
      );
    }),
  );
  show($("webauthn-empty"), devices.length === 0);
  show($("webauthn-add"), !local.webauthnOpen);
  show($("webauthn-form"), local.webauthnOpen);
}

async function removeDevice(method) {
  const yes = await confirmDialog({
    title: `Remove “${method.label}”?`,
    text: "You will no longer be able to sign in with this device.",
    yes: "Remove",
  });
  if (!yes) return;
  await attempt($("webauthn-error"), async () => {
    await withStepUp(() => post("/api/methods/remove", { methodId: method.id }));
    say($("webauthn-info"), `“${method.label}” was removed.`);
    await refresh();
  });
}

$("webauthn-add").addEventListener("click", () => {
  local.webauthnOpen = true;
  say($("webauthn-info"));
  renderWebauthn();
  $("webauthn-name").focus();
});

$("webauthn-cancel").addEventListener("click", () => {
  local.webauthnOpen = false;
  say($("webauthn-error"));
  renderWebauthn();
  $("webauthn-add").focus();
});

$("webauthn-form").addEventListener("submit", (event) => {
  event.preventDefault();
  return busy($("webauthn-register"), () =>
    attempt($("webauthn-error"), async () => {
      const name = $("webauthn-name").value;
      const { options } = await withStepUp(() => post("/api/webauthn/begin", { name }));
      const credential = await createCredential(options);
      const added = await withStepUp(() => post("/api/webauthn/finish", { credential }));
      local.webauthnOpen = false;
      $("webauthn-name").value = "";
      await refresh();
      say($("webauthn-info"), `“${added.method.label}” was registered.${notified(added.notices)}`);
      $("webauthn-add").focus();
    }),
  );
});

// Recovery codes

let downloadUrl = null;

function renderRecovery() {
  const { recoveryCodesLeft, methods } = view.status;
  $("recovery-state").textContent =
    recoveryCodesLeft > 0
      ? `You have ${recoveryCodesLeft} unused recovery code${recoveryCodesLeft === 1 ? "" : "s"}.`
      : methods.length
        ? "You have no recovery codes."
        : "Set up a method first; recovery codes are its backup.";
  $("recovery-generate").textContent = recoveryCodesLeft > 0 ? "Generate new codes" : "Generate recovery codes";
  show($("recovery-result"), Boolean(local.codes));
}

$("recovery-generate").addEventListener("click", (event) =>
  busy(event.currentTarget, () =>
    attempt($("recovery-error"), async () => {
      const { codes } = await withStepUp(() => post("/api/recovery/generate"));
      local.codes = codes;
      $("recovery-codes").replaceChildren(...codes.map((c) => h("li", {}, h("code", {}, c))));
      const text = [
        `twofa demo: recovery codes for ${view.email}`,
        `Generated ${new Date().toISOString()}. Each code works once; a new set replaces these.`,
        "",
        ...codes,
        "",
      ].join("\n");
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      $("recovery-download").href = downloadUrl;
      await refresh();
    }),
  ),
);

// Remembered browsers

function renderDevices() {
  const devices = view.status.rememberedDevices;
  $("devices-list").replaceChildren(
    ...devices.map((d) => {
      const forget = h("button", { type: "button", class: "remove", "aria-label": `Forget the browser remembered on ${new Date(d.created * 1000).toLocaleString()}` }, "Forget");
      forget.addEventListener("click", (event) =>
        busy(event.currentTarget, () =>
          attempt($("devices-error"), async () => {
            await post("/api/devices/forget", { deviceId: d.id });
            say($("devices-info"), "That browser will ask for your second factor again.");
            await refresh();
          }),
        ),
      );
      return h(
        "li",
        { class: "device remembered-device", dataset: { deviceId: d.id } },
        h(
          "div",
          { class: "device-info" },
          h("strong", { class: "device-name" }, "Browser remembered ", timeElement(d.created), ` after ${KIND_NAMES[d.method] ?? d.method}`),
          h("span", { class: "device-added" }, "Expires ", timeElement(d.expiresAt)),
          h("span", { class: "device-last-used" }, d.lastUsed ? ["Last used ", timeElement(d.lastUsed)] : "Not used yet"),
        ),
        h("div", { class: "device-actions" }, forget),
      );
    }),
  );
  show($("devices-empty"), devices.length === 0);
  show($("devices-forget-all"), devices.length > 0);
}

$("devices-forget-all").addEventListener("click", (event) =>
  busy(event.currentTarget, async () => {
    const yes = await confirmDialog({
      title: "Forget all remembered browsers?",
      text: "Every browser, this one too, will ask for your second factor at the next sign-in.",
      yes: "Forget all",
    });
    if (!yes) return;
    await attempt($("devices-error"), async () => {
      await post("/api/devices/forget-all");
      say($("devices-info"), "Every browser will ask for your second factor again.");
      await refresh();
    });
  }),
);

// Recent security events: twofa's audit events, as the demo's event handler stored them.

const EVENT_WORDS = {
  method_added: "Sign-in method added",
  method_renamed: "Sign-in method renamed",
  method_removed: "Sign-in method removed",
  login_succeeded: "Signed in",
  login_failed: "Sign-in attempt refused",
  locked_out: "Sign-in locked after too many attempts",
  replay_refused: "An already used code was refused",
  counter_regressed: "Security key flagged: possibly cloned",
  recovery_code_used: "Recovery code used",
  recovery_codes_generated: "New recovery codes generated",
  device_remembered: "Browser remembered",
  remembered_devices_revoked: "Remembered browsers forgotten",
  contact_email_changed: "Address for security notices changed",
  two_factor_required: "2FA became required",
  admin_reset: "2FA reset by an administrator",
  user_exported: "2FA settings exported by an administrator",
  user_imported: "2FA settings imported by an administrator",
  user_deleted: "2FA settings deleted by an administrator",
};

/** The detail twofa gives (an error name, a count, who and why) in plain words. */
function eventReason(e) {
  const r = e.reason;
  if (e.kind === "admin_reset") return `by ${e.actor ?? "an administrator"}: “${r}”`;
  if (r == null) return "";
  if (e.kind === "recovery_code_used") return `${r} left`;
  if (e.kind === "locked_out") return `for ${r} seconds`;
  const words = {
    remembered_device: "on a remembered browser, without a second factor",
    invalid_code: "wrong code",
    expired: "expired code",
    replayed: "code already used",
    locked_out: "while locked",
    webauthn_rejected: "the security key was not accepted",
    admin_reset: "by an administrator's reset",
    method_removed: "a method was removed",
    recovery_code_used: "a recovery code was used",
    replaced: "replaced by a new one",
    user: "by you",
  };
  return words[r] ?? r;
}

function renderEvents() {
  const events = view.events ?? [];
  $("events-list").replaceChildren(
    ...events.map((e) =>
      h(
        "li",
        { class: "event", dataset: { kind: e.kind } },
        h("span", { class: "event-kind" }, EVENT_WORDS[e.kind] ?? e.kind),
        e.method ? h("span", { class: "event-method" }, KIND_NAMES[e.method] ?? e.method) : null,
        timeElement(e.at),
        eventReason(e) ? h("span", { class: "event-reason" }, eventReason(e)) : null,
      ),
    ),
  );
  show($("events-empty"), events.length === 0);
}

// The page

function render() {
  renderAttention();
  renderTotp();
  renderEmail();
  renderWebauthn();
  renderRecovery();
  renderDevices();
  renderEvents();
}

if (view.status.pending?.email) {
  // A code was sent before this page was (re)loaded: let the user enter it.
  Object.assign(local, { emailOpen: true, emailSentTo: view.status.pending.email });
  $("email-address").value = view.status.pending.email;
  say($("email-sent"), `We sent a code to ${view.status.pending.email}.`);
}
render();
