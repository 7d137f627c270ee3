// Connected apps: a revocation or a withdrawal takes effect at once, so the person confirms it first.
// Without JavaScript the same forms post (CSRF-protected) without the question.
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
});
