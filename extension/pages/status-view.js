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
  // the title once, then the message (which says what is wrong and what to do, not the title again)
  const strong = document.createElement("strong");
  strong.textContent = `${title}.`;
  el.replaceChildren(strong, ` ${status.message ?? ""}`);
}

/**
 * Says when the server's fetcher needs the user: too old (sites change; yt-dlp follows them), or
 * unable to solve YouTube's challenges. Hidden otherwise.
 * @param {HTMLElement} el
 * @param {import("../shared/messages.js").Status | null | undefined} status
 */
export function showFetcher(el, status) {
  const f = status?.fetcher;
  /** @type {(string | Node)[]} */
  const parts = [];
  const command = () => {
    const code = document.createElement("code");
    code.textContent = f?.update_command ?? "make update-fetcher";
    return code;
  };
  if (f?.stale) {
    parts.push(`Site downloads may fail: update the fetcher. The server's yt-dlp is ${f.age_days} days old; run `,
      command(), " where the server runs.");
  }
  if (f && !f.challenge_solver) {
    parts.push(`${parts.length ? " " : ""}YouTube downloads may fail: the server's fetcher cannot solve YouTube's JavaScript `
      + `challenges (${f.problems.join("; ") || "no JavaScript runtime"}). Run `, command(), " where the server runs.");
  }
  el.replaceChildren(...parts);
  el.hidden = parts.length === 0;
}
