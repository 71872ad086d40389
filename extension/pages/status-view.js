// @ts-check
// The server status line shared by the popup and the options page.
export function showStatus(el, status) {
  el.dataset.state = status?.state ?? "unknown";
  if (!status) {
    el.textContent = "Checking the server…";
    return;
  }
  if (status.state === "connected") {
    const m = status.model || {};
    el.textContent = `Connected to ${status.server} — model ${m.name ?? "?"} (${m.mode ?? "?"}, ${m.device ?? "?"})`;
    return;
  }
  const title = {
    not_running: "Server not running",
    cert_untrusted: "Certificate not trusted",
    not_paired: "Not paired",
    error: "Server error",
  }[status.state] ?? status.state;
  el.textContent = `${title}: ${status.message ?? ""}`;
}
