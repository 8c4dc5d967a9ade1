// The session's usage by model: a table drawn from the synced rows (the last is the total).

function render({ model, el }) {
  el.classList.add("llm-usage");
  const title = element("div", "llm-usage-title", "Session usage");
  const body = element("div");
  el.append(title, body);
  const draw = () => {
    clearChildren(body);
    const rows = model.get("rows");
    if (!rows.length) {
      body.append(element("div", "llm-usage-empty", "No responses yet."));
      return;
    }
    const table = element("table");
    const head = element("tr");
    for (const name of model.get("headers")) head.append(element("th", "", name));
    table.append(element("thead"), element("tbody"));
    table.tHead.append(head);
    rows.forEach((row, index) => {
      const line = element("tr", index === rows.length - 1 ? "llm-usage-total" : "");
      for (const value of row) line.append(element("td", "", String(value)));
      table.tBodies[0].append(line);
    });
    body.append(table);
  };
  model.on("change:rows", draw);
  model.on("change:headers", draw);
  draw();
  return () => {
    model.off("change:rows", draw);
    model.off("change:headers", draw);
  };
}

export default { initialize: keepSavedState, render };
