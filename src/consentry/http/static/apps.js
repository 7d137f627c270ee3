// Connected apps: revoke through the consent API (DELETE /api/v1/oauth2/consents/{client_id}).
// Without JavaScript the same button posts a CSRF-protected form instead.
document.querySelectorAll("form.revoke").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const item = form.closest("li");
    const name = item.querySelector("strong").textContent;
    if (!window.confirm(`Stop ${name} from seeing your account? It loses access at once.`)) {
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    const response = await fetch(`/api/v1/oauth2/consents/${encodeURIComponent(item.dataset.clientId)}`, {
      method: "DELETE",
      credentials: "same-origin",
    });
    if (response.status === 204 || response.status === 404) {
      item.remove();
      const status = document.createElement("p");
      status.setAttribute("role", "status");
      status.textContent = `${name} can no longer see your account.`;
      document.querySelector("h1").after(status);
    } else {
      button.disabled = false;
      alert("Could not revoke access; please try again.");
    }
  });
});
