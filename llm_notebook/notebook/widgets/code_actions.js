// Copy and Insert below for each code block of an answer. Insert below needs the notebook the
// widget is shown in (JupyterLab and Notebook 7 give widgets its document context).

const VIEW_MIME = "application/vnd.jupyter.widget-view+json";

function cellIndexShowing(notebook, modelId) {
  for (let index = 0; index < notebook.cells.length; index++) {
    const cell = notebook.cells.get(index);
    const outputs = cell.outputs;
    if (!outputs) continue;
    for (let at = 0; at < outputs.length; at++) {
      if (outputs.get(at).data?.[VIEW_MIME]?.model_id === modelId) return index;
    }
  }
  return -1;
}

function insertBelow(model, code) {
  const notebook = model.widget_manager?.context?.model;
  const index = notebook ? cellIndexShowing(notebook, model.get("key")) : -1;
  if (index < 0) return false;
  notebook.sharedModel.insertCell(index + 1, { cell_type: "code", source: code });
  return true;
}

function render({ model, el }) {
  el.classList.add("llm-code-actions");
  const canInsert = Boolean(model.widget_manager?.context?.model?.sharedModel);
  const draw = () => {
    clearChildren(el);
    model.get("blocks").forEach((block, index) => {
      const row = element("div", "llm-code-action");
      const firstLine = block.code.split("\n")[0];
      const lines = block.code.split("\n").length;
      row.append(
        element("span", "llm-code-action-label",
          `${block.language || "code"} · ${lines} line${lines === 1 ? "" : "s"}`),
        element("code", "llm-code-action-preview", firstLine),
        copyButton(block.code));
      if (canInsert) {
        const insert = element("button", "llm-code-action-insert", "Insert below");
        insert.title = "A new code cell under this one, with this code (not run)";
        insert.addEventListener("click", () => {
          insert.textContent = insertBelow(model, block.code) ? "Inserted" : "Not found";
          setTimeout(() => { insert.textContent = "Insert below"; }, 1500);
        });
        row.append(insert);
      }
      row.dataset.block = String(index);
      el.append(row);
    });
  };
  model.on("change:blocks", draw);
  draw();
  return () => model.off("change:blocks", draw);
}

export default { initialize: keepSavedState, render };
