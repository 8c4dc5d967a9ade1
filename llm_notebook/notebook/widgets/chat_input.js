// The chat's message box: Enter sends, Shift+Enter starts a new line.
// The text is synced as `value`. Enter empties the box and sends {event: "submit", value} carrying
// the text itself: the widget manager may hold back a state update while a custom message goes at
// once, so the kernel must not read the text from a `value` that may lag behind.

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
  // JupyterLab's shortcuts (Shift+Enter runs the cell, Enter enters edit mode) skip this box.
  area.setAttribute("data-lm-suppress-shortcuts", "true");

  const sync = () => {
    model.set("value", area.value);
    model.save_changes();
  };
  area.addEventListener("input", sync);
  area.addEventListener("keydown", (event) => {
    if (isSendKey(event)) {
      event.preventDefault();
      const text = area.value;
      area.value = "";
      sync();
      model.send({ event: "submit", value: text });
    } else if (event.key === "Enter" && event.shiftKey && !event.isComposing) {
      // Inside a notebook the browser's own line break is cancelled: insert it here.
      event.preventDefault();
      area.setRangeText("\n", area.selectionStart, area.selectionEnd, "end");
      sync();
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
