// @ts-check
// Runs on the server's pairing page (https://127.0.0.1:PORT/pair#code=XXXX-XXXX, the link the
// server prints) and adds one button: clicking it hands the code to the service worker, which pairs
// with the server this page came from (if it is another server than the one configured, the
// options page asks the user first). No paste, but a click: a page that merely opens this link,
// or rewrites its fragment, pairs nothing. One try per page load: the server burns its code after
// five wrong ones, so nothing here may try again on its own.
(() => {
  const api = globalThis.browser ?? globalThis.chrome;
  const code = location.hash.match(/code=([A-Za-z0-9-]{4,32})/)?.[1]; // read once: later rewrites don't count
  if (!code) return;

  const COLOURS = { ready: "#0072B2", pairing: "#0072B2", paired: "#0072B2", already: "#0072B2", confirm: "#5b5b5b", failed: "#D55E00" };
  const host = document.createElement("div");
  host.id = "deepfake-check-pairing";
  const root = host.attachShadow({ mode: "closed" });
  const button = document.createElement("button");
  const style = document.createElement("style");
  style.textContent = `:host { all: initial; display: block; margin: 0 0 12px; }
    button { all: initial; box-sizing: border-box; display: block; width: 100%; padding: 12px 16px; border-radius: 6px;
      font: 600 16px system-ui, sans-serif; color: #fff; cursor: pointer; }
    button:disabled { cursor: default; }
    button:focus-visible { outline: 3px solid #56B4E9; outline-offset: 2px; }`;
  root.append(style, button);

  /** @param {keyof COLOURS} state @param {string} text */
  function show(state, text) {
    host.dataset.state = state; // the server's own page may know how pairing went; the browser tests read it
    button.textContent = text;
    button.style.background = COLOURS[state];
    button.disabled = state !== "ready";
  }

  let tried = false;
  button.addEventListener("click", async (e) => {
    if (!e.isTrusted || tried) return; // the user's click only, and only once
    tried = true;
    show("pairing", "Pairing…");
    const answer = await api.runtime.sendMessage({ type: "pair", code }) // the worker knows which page sent it
      .catch((err) => ({ ok: false, error: { error: "internal", message: String(err) } }));
    if (answer?.ok) {
      show("paired", "Deepfake Check is paired with this server. You can close this tab.");
      history.replaceState(null, "", location.pathname); // the code is spent; keep it out of history
    } else if (answer?.error?.error === "confirm_needed") {
      show("confirm", answer.error.message); // another server than the configured one: the options page asks
    } else {
      show("failed", `Deepfake Check could not pair: ${answer?.error?.message ?? "no answer"} Reload this page to try again.`);
    }
  });

  document.body.prepend(host);
  // Already paired with this very server (this link's code has most likely been used): say so,
  // rather than offer a code the server would refuse.
  show("pairing", "Checking whether Deepfake Check is paired with this server…");
  api.runtime.sendMessage({ type: "pair-state" }).catch(() => null).then((answer) => {
    if (answer?.ok && answer.paired) {
      tried = true;
      show("already", "Deepfake Check is already paired with this server: nothing to do. You can close this tab.");
      history.replaceState(null, "", location.pathname);
    } else show("ready", `Pair Deepfake Check with this server (${location.host})`);
  });
})();
