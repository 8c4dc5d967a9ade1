// The approval widget of a %%llm --approve cell: one row per tool call the model asked for.

function render({ model, el }) {
  el.classList.add("llm-approvals");
  const title = element("div", "llm-approvals-title", "Tool calls ask before they run");
  const list = element("div", "llm-approvals-list");
  el.append(title, list);
  const draw = () => drawApprovals(list, model.get("requests"), (content) => model.send(content));
  model.on("change:requests", draw);
  draw();
  return () => model.off("change:requests", draw);
}

export default { initialize: keepSavedState, render };
