// /orders: the account's orders. Creating the first one makes 2FA required for the account.
import { busy, go, h, pageState, post, say, show, timeElement } from "./common.js";

const list = document.getElementById("orders");
const empty = document.getElementById("orders-empty");
const error = document.getElementById("orders-error");
document.getElementById("account-email").textContent = pageState.email ?? "";

function render(orders) {
  list.replaceChildren(
    ...orders.map((o) =>
      h("li", { class: "order", dataset: { orderId: o.id } }, h("strong", {}, `Order #${o.number}`), ` · ${o.item} · `, timeElement(o.created)),
    ),
  );
  show(empty, orders.length === 0);
}

const button = document.getElementById("create-order");
button.addEventListener("click", () =>
  busy(button, async () => {
    say(error);
    try {
      const { orders, next } = await post("/api/orders");
      if (next) return go(next);
      render(orders);
    } catch (e) {
      if (e.body?.next) return go(e.body.next);
      say(error, e.message);
    }
  }),
);

render(pageState.orders ?? []);
