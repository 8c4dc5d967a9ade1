// Approval questions ("Allow lookup(q='x')?") with Allow / Deny / Allow all, for the approval
// widget and the chat. Each item is {id, question, decision}; an open one (decision null) has
// buttons, which send {event: "decide", id, decision}; a decided one says what was decided.
// Restored from a saved notebook, the buttons make way for the decisions alone.

const DECIDED = { allow: "allowed", deny: "denied", "allow all": "allowed, and the rest too" };

function approvalItem(item, send) {
  const row = element("div", "llm-approval");
  row.dataset.approval = item.id;
  row.append(element("code", "llm-approval-question", item.question));
  if (item.decision) {
    row.classList.add(`llm-approval-${item.decision.replace(" ", "-")}`);
    row.append(element("span", "llm-approval-decision", DECIDED[item.decision] ?? item.decision));
    return row;
  }
  if (item.closed) {
    row.append(element("span", "llm-approval-decision", "not answered"));
    return row;
  }
  const buttons = element("span", "llm-approval-buttons llm-nb-live-only");
  for (const [label, decision, primary] of [["Allow", "allow", true], ["Deny", "deny", false],
    ["Allow all", "allow all", false]]) {
    const button = element("button", primary ? "llm-nb-primary" : "", label);
    button.type = "button";
    button.dataset.decision = decision;
    button.addEventListener("click", () => {
      for (const other of buttons.querySelectorAll("button")) other.disabled = true;
      send({ event: "decide", id: item.id, decision });
    });
    buttons.append(button);
  }
  row.append(buttons, element("span", "llm-approval-decision llm-nb-saved-only", "not answered"));
  return row;
}

function drawApprovals(container, items, send) {
  clearChildren(container);
  for (const item of items) container.append(approvalItem(item, send));
  container.hidden = !items.length;
}
