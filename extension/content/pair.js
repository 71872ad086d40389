// @ts-check
// Runs on the server's own pairing page (https://127.0.0.1:PORT/pair#code=XXXX-XXXX): hands the
// code to the service worker, which pairs with the server this page came from. One click, no paste.
(() => {
  const api = globalThis.browser ?? globalThis.chrome;
  let done = false;

  function banner(text, ok) {
    let host = document.getElementById("deepfake-check-pairing");
    if (!host) {
      host = document.createElement("div");
      host.id = "deepfake-check-pairing";
      document.body.prepend(host);
    }
    host.setAttribute("data-state", ok ? "paired" : "failed");
    host.textContent = text;
    host.style.cssText = `font: 600 16px system-ui, sans-serif; padding: 12px 16px; margin: 0 0 12px; border-radius: 6px; color: #fff; background: ${ok ? "#0072B2" : "#D55E00"}`;
  }

  async function pair() {
    const m = location.hash.match(/code=([A-Za-z0-9-]{4,32})/);
    if (!m || done) return;
    done = true;
    const answer = await api.runtime.sendMessage({ type: "pair", code: m[1], server: location.origin }).catch((e) => ({ ok: false, error: { message: String(e) } }));
    if (answer?.ok) {
      banner("Deepfake Check is paired with this server. You can close this tab.", true);
      history.replaceState(null, "", location.pathname); // the code is spent; keep it out of history
    } else {
      done = false;
      banner(`Deepfake Check could not pair: ${answer?.error?.message ?? "no answer"}`, false);
    }
  }

  addEventListener("hashchange", pair);
  pair();
})();
