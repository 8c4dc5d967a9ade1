// Saved notebooks: the package's widgets come back from their own state.
//
// JupyterLab and Notebook 7 save a widget output as a reference to a live model; with the
// default settings they save no model state, so a reopened notebook cannot find the model and
// shows "Error displaying widget". Just before each save, this writes the state of the
// package's widgets (and of the models they refer to) into the notebook's widget-state
// metadata, which the widget manager restores on load. Each widget draws itself from its state
// alone, so the restored one shows what the live one last showed. State of other widgets
// already there (the manager's own, when "save widget state" is on) is left as it is.

const WIDGET_STATE = "application/vnd.jupyter.widget-state+json";
const OURS = "llm_notebook.";
const keptContexts = new WeakSet();

function isOurs(entry) {
  return String(entry?.state?._anywidget_id ?? "").startsWith(OURS);
}

function referencedIds(value, found = []) {
  if (typeof value === "string" && value.startsWith("IPY_MODEL_")) {
    found.push(value.slice("IPY_MODEL_".length));
  } else if (value && typeof value === "object") {
    for (const item of Object.values(value)) referencedIds(item, found);
  }
  return found;
}

function writeSavedState(manager, notebook) {
  const live = manager.get_state_sync({ drop_defaults: true });
  const saved = notebook.getMetadata("widgets")?.[WIDGET_STATE];
  const state = { ...(saved?.state ?? {}) };
  for (const [id, entry] of Object.entries(state)) {
    if (isOurs(entry) && !(id in live.state)) delete state[id]; // closed since
  }
  const pending = Object.keys(live.state).filter((id) => isOurs(live.state[id]));
  const copied = new Set();
  while (pending.length) {
    const id = pending.pop();
    if (copied.has(id) || !(id in live.state)) continue;
    copied.add(id);
    state[id] = live.state[id];
    pending.push(...referencedIds(live.state[id].state));
  }
  notebook.setMetadata("widgets", {
    ...notebook.getMetadata("widgets"),
    [WIDGET_STATE]: {
      version_major: live.version_major,
      version_minor: live.version_minor,
      state,
    },
  });
}

// anywidget's `initialize`: once per notebook, save our widgets' state with the notebook.
// Frontends without a document context (VS Code, static HTML) have nothing to save into.
function keepSavedState({ model }) {
  const manager = model.widget_manager;
  const context = manager?.context;
  if (!context?.saveState || !context.model?.setMetadata || keptContexts.has(context)) return;
  keptContexts.add(context);
  context.saveState.connect((_, phase) => {
    if (phase !== "started") return;
    try {
      writeSavedState(manager, context.model);
    } catch (error) {
      console.warn("llm_notebook: could not save the widgets' state", error);
    }
  });
}
