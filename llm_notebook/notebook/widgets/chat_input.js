// The chat's message box: Enter sends, Shift+Enter starts a new line.
// The text is synced as `value`; Enter sends the custom message {event: "submit"} after it.

function isSendKey(event) {
  return event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey &&
    !event.metaKey && !event.isComposing;
}

function render({ model, el }) {
  const area = document.createElement("textarea");
  area.className = "llm-chat-input";
  area.rows = model.get("rows");
  area.placeholder = model.get("placeholder");
  area.value = model.get("value");

  const sync = () => {
    model.set("value", area.value);
    model.save_changes();
  };
  area.addEventListener("input", sync);
  area.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    // Keep JupyterLab's own Enter shortcuts (run cell, edit mode) out of the message box.
    event.stopPropagation();
    if (isSendKey(event)) {
      event.preventDefault();
      sync();
      model.send({ event: "submit" });
    }
  });
  const onValue = () => {
    if (area.value !== model.get("value")) area.value = model.get("value");
  };
  const onPlaceholder = () => { area.placeholder = model.get("placeholder"); };
  model.on("change:value", onValue);
  model.on("change:placeholder", onPlaceholder);
  el.appendChild(area);
  return () => {
    model.off("change:value", onValue);
    model.off("change:placeholder", onPlaceholder);
  };
}

export default { render };
