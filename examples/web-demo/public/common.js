// Shared by every page: the page's initial state, JSON calls with the CSRF token, messages,
// dates, the email-and-password forms, and the sign-out button of the nav.

/** The state the server put in the page (<script type="application/json" id="page-state">). */
export const pageState = JSON.parse(document.getElementById("page-state")?.textContent || "{}");

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

/** A refused call: `error` is the server's name for it, `message` plain words for the user. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || "Something went wrong: try again.");
    this.status = status;
    this.error = body?.error ?? "internal";
    this.body = body ?? {};
  }
}

/** POSTs `body` as JSON with the CSRF token; resolves to the JSON answer, else throws ApiError. */
export async function post(path, body = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, { error: "network", message: "The server cannot be reached: check that the demo is running." });
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** GETs a JSON endpoint. */
export async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Shows `message` in an element (an alert or status); empty text hides it (CSS :empty). */
export function say(element, message = "") {
  element.textContent = message;
}

/** Shows or hides an element. */
export function show(element, visible = true) {
  element.hidden = !visible;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A <time> element for Unix seconds. */
export function timeElement(seconds) {
  const time = document.createElement("time");
  const date = new Date(seconds * 1000);
  time.dateTime = date.toISOString();
  time.textContent = dateFormat.format(date);
  return time;
}

/** Creates an element with attributes and children (strings become text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat().filter((c) => c != null));
  return element;
}

/** Follows a `next` the server gave (a page to go to). */
export function go(next) {
  window.location.assign(next);
}

/** Disables a control while `task` runs (no double submits). Focus lost meanwhile (a disabled
 * control cannot keep it, e.g. when a dialog opened and closed) comes back to it. */
export async function busy(control, task) {
  if (control) control.disabled = true;
  try {
    return await task();
  } finally {
    if (control) {
      control.disabled = false;
      const active = document.activeElement;
      const lost = !active || active === document.body || active.closest("dialog:not([open]), [hidden]");
      if (lost && !control.hidden && control.isConnected) control.focus();
    }
  }
}

/** The email-and-password form of /signin or /signup (elements `{page}-form`, `-email`,
 * `-password`, `-submit` and `-error`): POSTs the two to `path`, then follows the `next` answered,
 * or shows the refusal. */
export function emailPasswordForm(page, path) {
  const field = (name) => document.getElementById(`${page}-${name}`);
  const error = field("error");
  field("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error);
    await busy(field("submit"), async () => {
      try {
        const { next } = await post(path, { email: field("email").value, password: field("password").value });
        go(next);
      } catch (e) {
        say(error, e.message);
      }
    });
  });
}

// Every page: the flash message and the nav's sign-out button.

const flash = document.getElementById("flash");
if (flash && pageState.flash) {
  flash.textContent = pageState.flash;
  flash.hidden = false;
}

document.getElementById("signout")?.addEventListener("click", async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    const { next } = await post("/api/signout");
    go(next);
  } catch {
    go("/signin");
  }
});
