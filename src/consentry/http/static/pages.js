// What scripts add to the pages; every page works without them.

// An action that takes effect at once (a revocation, a withdrawal, a deletion) is confirmed first.
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
});

// Show or hide what is typed in a password field.
document.querySelectorAll("button.reveal").forEach((button) => {
  const field = document.getElementById(button.getAttribute("aria-controls"));
  button.hidden = false;
  button.addEventListener("click", () => {
    const shown = field.type === "password";
    field.type = shown ? "text" : "password";
    button.textContent = shown ? button.dataset.hide : button.dataset.show;
    button.setAttribute("aria-pressed", String(shown));
  });
});

// Copy a token (the demo app's answer) to the clipboard.
document.querySelectorAll("button.copy").forEach((button) => {
  const source = document.getElementById(button.getAttribute("aria-controls"));
  button.hidden = false;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(source.value ?? source.textContent);
    button.textContent = button.dataset.copied;
  });
});
