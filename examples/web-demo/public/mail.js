// /mail: what the local SMTP server received, newest first. The HTML part is shown in a
// sandboxed iframe (no scripts, no same-origin access).
import { h, pageState, show } from "./common.js";

const messages = pageState.messages ?? [];
const list = document.getElementById("mail-list");

list.replaceChildren(
  ...messages.map((m) =>
    h(
      "article",
      { class: "mail-item card", dataset: { mailId: String(m.id) }, "aria-labelledby": `mail-${m.id}-subject` },
      h("h2", { class: "mail-subject", id: `mail-${m.id}-subject` }, m.subject),
      h(
        "p",
        { class: "mail-meta" },
        "To: ",
        h("span", { class: "mail-to" }, m.to),
        " · ",
        h("time", { class: "mail-date", datetime: m.date }, new Date(m.date).toLocaleString()),
      ),
      h("h3", { class: "mail-part" }, "Text"),
      h("pre", { class: "mail-text" }, m.text),
      h("h3", { class: "mail-part" }, "HTML"),
      Object.assign(h("iframe", { class: "mail-html", sandbox: "", title: `HTML version of “${m.subject}”` }), { srcdoc: m.html }),
    ),
  ),
);
show(document.getElementById("mail-empty"), messages.length === 0);
