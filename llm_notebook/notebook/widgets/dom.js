// Small DOM helpers every widget of the package draws with.

function clearChildren(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Copy text to the clipboard; the textarea route serves pages that are not a secure context.
async function copyText(text) {
  if (navigator.clipboard?.writeText && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = element("textarea");
  area.value = text;
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

function copyButton(text, label = "Copy") {
  const button = element("button", "llm-nb-copy", label);
  button.type = "button";
  button.title = "Copy to the clipboard";
  button.addEventListener("click", async () => {
    try {
      await copyText(typeof text === "function" ? text() : text);
      button.textContent = "Copied";
    } catch (error) {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

// Package-rendered HTML (model text escaped in the kernel) with a Copy button on each code block;
// links open in a new tab instead of replacing the notebook.
function fillRendered(node, html) {
  node.innerHTML = html;
  for (const link of node.querySelectorAll("a[href]")) {
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  }
  for (const block of node.querySelectorAll("pre")) {
    const code = block.querySelector("code") ?? block;
    const holder = element("div", "llm-nb-code");
    block.replaceWith(holder);
    holder.append(block, copyButton(() => code.textContent));
  }
}
