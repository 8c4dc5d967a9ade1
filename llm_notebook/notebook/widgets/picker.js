// The default model of %%llm: a search box narrowing a menu of the registered models.

function label(choice) {
  return choice.aliases.length ? `${choice.id} (${choice.aliases.join(", ")})` : choice.id;
}

function render({ model, el }) {
  const row = element("div", "llm-picker-row llm-nb-live-only");
  const search = element("input", "llm-picker-search");
  search.type = "search";
  search.placeholder = "search models";
  const menu = element("select", "llm-picker-menu");
  menu.title = "The model %%llm uses without -m";
  row.append(element("span", "llm-picker-label", "Model"), menu, search);
  const status = element("div", "llm-picker-status");
  el.append(row, status);

  const draw = () => {
    const query = search.value.trim().toLowerCase();
    const selected = model.get("selected");
    clearChildren(menu);
    if (!selected) {
      const none = element("option", "", "— choose a model —");
      none.value = "";
      menu.append(none);
    }
    for (const choice of model.get("choices")) {
      const words = [choice.id, ...choice.aliases].join(" ").toLowerCase();
      if (query && !words.includes(query) && choice.id !== selected) continue;
      const option = element("option", "", label(choice));
      option.value = choice.id;
      menu.append(option);
    }
    menu.value = selected;
    status.textContent = model.get("status");
  };
  search.addEventListener("input", draw);
  menu.addEventListener("change", () => {
    if (menu.value) model.send({ event: "choose", id: menu.value });
    menu.value = model.get("selected"); // until the kernel says it is the default
  });
  for (const name of ["change:choices", "change:selected", "change:status"]) model.on(name, draw);
  draw();
  return () => {
    for (const name of ["change:choices", "change:selected", "change:status"]) model.off(name, draw);
  };
}

export default { initialize: keepSavedState, render };
