// The chat: the transcript in its own scroll area (following new text), the message box under
// it, always in view; the model menu and its options above. Everything is drawn from the
// synced state, so a restored chat shows the saved conversation (without the controls).
//
// The message box is the front-end's own: Enter sends {event: "submit", id, text, ...} and the
// box is cleared only when the kernel answers {event: "submitted", id, sent: true}. A message
// that is not sent (an error, an answer still streaming) leaves the text where it was.

const FOLLOW_SLACK_PX = 48;

function isSendKey(event) {
  return event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey &&
    !event.metaKey && !event.isComposing;
}

function messageNode(message) {
  const node = element("div", `llm-chat-message llm-chat-${message.kind}`);
  if (message.partial) node.classList.add("llm-chat-partial");
  if (message.who) node.append(element("div", "llm-chat-role", message.who));
  const body = element("div", "llm-nb-rendered");
  fillRendered(body, message.html);
  node.append(body);
  return node;
}

// Messages grouped into turns: each user message starts one.
function drawTranscript(list, messages) {
  clearChildren(list);
  let turn = null;
  for (const message of messages) {
    if (!turn || message.kind === "user") {
      turn = element("div", "llm-chat-turn");
      list.append(turn);
    }
    turn.append(messageNode(message));
  }
  if (!messages.length) list.append(element("div", "llm-chat-empty", "No messages yet."));
}

function optionInput(field) {
  let input;
  if (field.type === "boolean") {
    input = element("select");
    for (const [label, value] of [[`default (${field.default || "none"})`, ""], ["true", "true"],
      ["false", "false"]]) {
      const option = element("option", "", label);
      option.value = value;
      input.append(option);
    }
    input.value = field.set ? String(field.value) : "";
  } else {
    input = element("input");
    input.type = field.type === "integer" || field.type === "number" ? "number" : "text";
    if (input.type === "number") {
      input.step = field.type === "integer" ? "1" : "any";
      if (field.minimum !== null && field.minimum !== undefined) input.min = field.minimum;
      if (field.maximum !== null && field.maximum !== undefined) input.max = field.maximum;
    }
    input.placeholder = field.default ? `default ${field.default}` : "";
    const shown = field.value === null || field.value === undefined ? "" : field.value;
    input.value = field.set ? (typeof shown === "object" ? JSON.stringify(shown) : String(shown)) : "";
  }
  input.className = "llm-chat-option-input";
  input.setAttribute("data-lm-suppress-shortcuts", "true");
  input.dataset.option = field.name;
  input.title = field.description;
  return input;
}

function drawOptions(body, summary, model) {
  const fields = model.get("option_fields");
  clearChildren(body);
  const set = fields.filter((field) => field.set).length;
  summary.textContent = set ? `Options (${set} set)` : "Options";
  if (!fields.length) body.append(element("div", "llm-chat-option-note", "This model has no options."));
  for (const field of fields) {
    const row = element("label", "llm-chat-option");
    const name = element("span", "llm-chat-option-name", field.name);
    const kind = element("span", "llm-chat-option-type", field.type);
    const input = optionInput(field);
    const send = (value) => model.send({ event: "option", name: field.name, value });
    const commit = () => {
      if (field.type === "boolean") send(input.value === "" ? null : input.value === "true");
      else send(input.value);
    };
    input.addEventListener("change", commit);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        commit();
      }
    });
    row.append(name, kind, input);
    if (field.description) row.append(element("span", "llm-chat-option-help", field.description));
    body.append(row);
  }
  const error = model.get("option_error");
  if (error) body.append(element("div", "llm-chat-option-error", error));
}

function render({ model, el }) {
  el.classList.add("llm-chat");

  const header = element("div", "llm-chat-header");
  const title = element("span", "llm-chat-title", "Chat");
  const menu = element("select", "llm-chat-model llm-nb-live-only");
  menu.title = "Model: the conversation so far goes with a switch";
  const savedModel = element("span", "llm-chat-saved-model llm-nb-saved-only");
  const options = element("details", "llm-chat-options llm-nb-live-only");
  const optionsSummary = element("summary", "", "Options");
  const optionsBody = element("div", "llm-chat-options-body");
  options.append(optionsSummary, optionsBody);
  header.append(title, menu, savedModel, options);

  const scroll = element("div", "llm-chat-scroll");
  const list = element("div", "llm-chat-messages");
  const live = element("div", "llm-chat-message llm-chat-live");
  const liveRole = element("div", "llm-chat-role");
  const liveBody = element("div", "llm-nb-rendered");
  live.append(liveRole, liveBody);
  const questions = element("div", "llm-chat-approvals");
  scroll.append(list, live, questions);

  const composer = element("div", "llm-chat-composer llm-nb-live-only");
  const area = element("textarea", "llm-chat-input");
  area.rows = 2;
  area.placeholder = model.get("placeholder");
  // JupyterLab's shortcuts (Shift+Enter runs the cell, Enter enters edit mode) skip this box.
  area.setAttribute("data-lm-suppress-shortcuts", "true");
  const controls = element("div", "llm-chat-controls");
  const sendButton = element("button", "llm-nb-primary llm-chat-send", "Send");
  sendButton.title = "Send (Enter)";
  const stopButton = element("button", "llm-chat-stop", "Stop");
  stopButton.title = "Stop the answer; the part received is kept";
  const attach = element("input", "llm-chat-attach");
  attach.type = "text";
  attach.placeholder = "attach: variable, file, URL or @plot";
  attach.setAttribute("data-lm-suppress-shortcuts", "true");
  const filePicker = element("input");
  filePicker.type = "file";
  filePicker.multiple = true;
  filePicker.hidden = true;
  const uploadButton = element("button", "llm-chat-upload", "Upload…");
  uploadButton.title = "Attach files from this computer";
  const chosen = element("span", "llm-chat-files");
  const notice = element("span", "llm-chat-notice");
  controls.append(sendButton, stopButton, attach, uploadButton, filePicker, chosen, notice);
  composer.append(area, controls);

  const savedNote = element("div", "llm-nb-saved-only",
    "A saved chat: run its cell again to continue the conversation.");
  const footer = element("div", "llm-chat-footer");
  el.append(header, scroll, composer, savedNote, footer);

  const nearBottom = () =>
    scroll.scrollHeight - scroll.scrollTop - scroll.clientHeight < FOLLOW_SLACK_PX;
  const following = (draw, force = false) => {
    const follow = force || nearBottom();
    draw();
    if (follow) scroll.scrollTop = scroll.scrollHeight;
  };

  let files = [];
  const drawFiles = () => {
    clearChildren(chosen);
    files.forEach((file, index) => {
      const chip = element("span", "llm-chat-file", file.name);
      const remove = element("button", "llm-chat-file-remove", "×");
      remove.title = `Do not attach ${file.name}`;
      remove.addEventListener("click", () => { files.splice(index, 1); drawFiles(); });
      chip.append(remove);
      chosen.append(chip);
    });
  };
  uploadButton.addEventListener("click", () => filePicker.click());
  filePicker.addEventListener("change", () => {
    files = files.concat(Array.from(filePicker.files));
    filePicker.value = "";
    drawFiles();
  });

  let pending = null;
  let counter = 0;
  const submit = async () => {
    if (pending) return;
    pending = { id: ++counter, text: area.value, attach: attach.value, files: files.slice() };
    composer.classList.add("llm-chat-sending");
    const buffers = await Promise.all(pending.files.map((file) => file.arrayBuffer()));
    model.send({
      event: "submit", id: pending.id, text: pending.text, attach: pending.attach,
      files: pending.files.map((file) => ({ name: file.name, type: file.type })),
    }, buffers);
  };
  const onCustom = (message) => {
    if (message?.event !== "submitted" || !pending || message.id !== pending.id) return;
    if (message.sent) {
      // Only what was sent is cleared: text typed since stays.
      if (area.value === pending.text) area.value = "";
      if (attach.value === pending.attach) attach.value = "";
      files = files.filter((file) => !pending.files.includes(file));
      drawFiles();
      following(() => {}, true);
    }
    pending = null;
    composer.classList.remove("llm-chat-sending");
  };
  area.addEventListener("keydown", (event) => {
    if (isSendKey(event)) {
      event.preventDefault();
      submit();
    } else if (event.key === "Enter" && event.shiftKey && !event.isComposing) {
      // Inside a notebook the browser's own line break is cancelled: insert it here.
      event.preventDefault();
      area.setRangeText("\n", area.selectionStart, area.selectionEnd, "end");
    }
  });
  sendButton.addEventListener("click", submit);
  stopButton.addEventListener("click", () => model.send({ event: "stop" }));
  menu.addEventListener("change", () => {
    model.send({ event: "model", id: menu.value });
    menu.value = model.get("current_model"); // until the kernel says the switch happened
  });

  const drawMenu = () => {
    clearChildren(menu);
    for (const id of model.get("model_choices")) {
      const option = element("option", "", id);
      option.value = id;
      menu.append(option);
    }
    menu.value = model.get("current_model");
    savedModel.textContent = model.get("current_model");
  };
  const drawBusy = () => {
    const busy = model.get("busy");
    sendButton.disabled = busy;
    stopButton.disabled = !busy;
    menu.disabled = busy;
    el.classList.toggle("llm-chat-busy", busy);
  };
  const drawLive = () => following(() => {
    const answer = model.get("live");
    live.hidden = !answer?.who;
    liveRole.textContent = answer?.who ?? "";
    if (answer?.html) fillRendered(liveBody, answer.html);
    else liveBody.textContent = "…";
  });
  const drawMessages = () => following(() => drawTranscript(list, model.get("messages")));
  const drawApprovalQuestions = () => following(() =>
    drawApprovals(questions, model.get("approvals"), (content) => model.send(content)));
  const drawNotice = () => { notice.textContent = model.get("notice"); };
  const drawFooter = () => { footer.textContent = model.get("footer"); };
  const drawOptionsEditor = () => drawOptions(optionsBody, optionsSummary, model);
  const drawPlaceholder = () => { area.placeholder = model.get("placeholder"); };

  const listeners = [
    ["change:messages", drawMessages], ["change:live", drawLive],
    ["change:model_choices", drawMenu], ["change:current_model", drawMenu],
    ["change:busy", drawBusy], ["change:notice", drawNotice], ["change:footer", drawFooter],
    ["change:option_fields", drawOptionsEditor], ["change:option_error", drawOptionsEditor],
    ["change:placeholder", drawPlaceholder], ["change:approvals", drawApprovalQuestions],
    ["msg:custom", onCustom],
  ];
  for (const [name, listener] of listeners) model.on(name, listener);
  drawMenu();
  drawBusy();
  drawMessages();
  drawLive();
  drawApprovalQuestions();
  drawNotice();
  drawFooter();
  drawOptionsEditor();
  // Shown at the newest message once the browser has laid the chat out.
  requestAnimationFrame(() => { scroll.scrollTop = scroll.scrollHeight; });
  return () => {
    for (const [name, listener] of listeners) model.off(name, listener);
  };
}

export default { initialize: keepSavedState, render };
