// Drives Debian's Firefox (firefox-esr) for the browser tests, without geckodriver: puppeteer-core
// over WebDriver BiDi. One process per browser; pytest (tests/e2e/firefox.py) sends it one JSON
// command per line on stdin and reads one JSON answer per line on stdout: {"id", "ok", "value"|"error"}.
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

/** @type {import("puppeteer-core").Browser | null} */
let browser = null;
let uuid = "";
const pages = new Map(); // id → puppeteer Page
let nextPage = 1;

const bidi = (method, params) => browser.connection.send(method, params).then((r) => r.result);
const page = (id) => {
  const p = pages.get(id);
  if (!p) throw new Error(`no page ${id}`);
  return p;
};
const context = (id) => page(id).mainFrame()._id;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Navigates with BiDi itself: puppeteer's goto waits for events that a moz-extension:// page never sends it. */
async function navigate(id, url) {
  await bidi("browsingContext.navigate", { context: context(id), url, wait: url.startsWith("moz-extension:") ? "none" : "complete" });
  for (let i = 0; i < 100; i++) {
    const r = await bidi("script.evaluate", { expression: "[location.href, document.readyState]", target: { context: context(id) }, awaitPromise: false })
      .catch(() => null);
    const [href, state] = r?.result?.value?.map((v) => v.value) ?? [];
    if (href && href !== "about:blank" && state === "complete") return href;
    await sleep(100);
  }
  throw new Error(`${url} did not load`);
}

/** Evaluates `(fn)(arg)` in the page (an extension page's world has the browser.* API), awaiting it. */
async function evaluate(id, fn, arg) {
  const r = await bidi("script.callFunction", {
    functionDeclaration: fn, target: { context: context(id) }, awaitPromise: true,
    arguments: [{ type: "string", value: JSON.stringify(arg ?? null) }],
    serializationOptions: { maxObjectDepth: 0 },
  });
  if (r.type === "exception") throw new Error(`in page: ${r.exceptionDetails.text}`);
  return r.result;
}

/** Unwraps a BiDi remote value holding a JSON string (evaluate's functions return JSON.stringify(...)). */
const json = (remote) => (remote?.type === "string" ? JSON.parse(remote.value) : null);

const commands = {
  async launch({ profile, extension, prefs, args = [] }) {
    browser = await puppeteer.launch({
      browser: "firefox", executablePath: process.env.FIREFOX ?? "/usr/bin/firefox-esr", headless: true,
      userDataDir: profile, protocol: "webDriverBiDi", extraPrefsFirefox: prefs ?? {},
      // lets the tests open the extension's own pages (moz-extension://) and read its UUID
      args: ["--remote-allow-system-access", ...args],
    });
    if (!extension) return { uuid: "" };
    const id = await browser.installExtension(extension); // a temporary add-on: a new UUID each time
    const [chromeWindow] = (await bidi("browsingContext.getTree", { "moz:scope": "chrome" })).contexts;
    const r = await bidi("script.evaluate", {
      expression: `WebExtensionPolicy.getByID(${JSON.stringify(id)}).mozExtensionHostname`,
      target: { context: chromeWindow.context }, awaitPromise: false,
    });
    uuid = r.result.value;
    return { uuid, id };
  },

  async newPage({ url }) {
    const p = await browser.newPage();
    const id = nextPage++;
    pages.set(id, p);
    await p.setViewport({ width: 1100, height: 800 });
    if (url) await navigate(id, url);
    return id;
  },

  goto: ({ page: id, url }) => navigate(id, url),
  front: ({ page: id }) => page(id).bringToFront(),
  close: async ({ page: id }) => { await page(id).close(); pages.delete(id); },

  /** fn: a function source taking one argument and returning something JSON-serialisable. */
  async eval({ page: id, fn, arg }) {
    return json(await evaluate(id, `async (a) => JSON.stringify(await (${fn})(JSON.parse(a)) ?? null)`, arg));
  },

  async click({ page: id, selector, button = "left" }) {
    await page(id).click(selector, { button });
  },

  /**
   * The browser's real context menu: a right-click on the element (a trusted event, as the user's),
   * then the extension's item chosen in the menu Firefox opened (its chrome, reached with system
   * access), so menus.onClicked gets what Firefox itself reports (targetElementId, frameId, srcUrl).
   */
  async contextMenu({ page: id, selector, label, at = [0.5, 0.5] }) {
    const p = page(id);
    await p.bringToFront();
    const [chromeWindow] = (await bidi("browsingContext.getTree", { "moz:scope": "chrome" })).contexts;
    const inChrome = async (fn, arg = "") => {
      const r = await bidi("script.callFunction", {
        functionDeclaration: fn, target: { context: chromeWindow.context }, awaitPromise: true,
        arguments: [{ type: "string", value: arg }],
      });
      if (r.type === "exception") throw new Error(`in chrome: ${r.exceptionDetails.text}`);
      return r.result.value;
    };
    // A menu left open by an earlier right-click (a test's, never dismissed) would take this
    // choice to the page it was opened on: close it, and wait for the menu this right-click opens.
    await inChrome(`async () => {
      const menu = document.getElementById("contentAreaContextMenu");
      if (menu.state === "open" || menu.state === "showing") {
        const hidden = new Promise((r) => menu.addEventListener("popuphidden", r, { once: true }));
        menu.hidePopup();
        await Promise.race([hidden, new Promise((r) => setTimeout(r, 2000))]);
      }
      window.__dfcShown = new Promise((r) => menu.addEventListener("popupshown", () => r(true), { once: true }));
      return true;
    }`);
    const box = await (await p.$(selector)).boundingBox();
    await p.mouse.click(box.x + box.width * at[0], box.y + box.height * at[1], { button: "right" });
    const result = await inChrome(`async (label) => {
      const menu = document.getElementById("contentAreaContextMenu");
      const shown = await Promise.race([window.__dfcShown, new Promise((r) => setTimeout(() => r(false), 10000))]);
      if (!shown) return "the context menu did not open (" + menu.state + ")";
      const items = [...menu.querySelectorAll("menuitem")];
      const item = items.find((m) => m.getAttribute("label") === label);
      if (!item) { menu.hidePopup(); return "no item " + label + " in: " + items.map((m) => m.getAttribute("label")).filter(Boolean).join(" | "); }
      item.doCommand();
      menu.hidePopup();
      return "ok";
    }`, label);
    if (result !== "ok") throw new Error(result);
    return true;
  },

  async press({ page: id, key }) {
    await page(id).keyboard.press(key);
  },

  /**
   * Calls fn (a function source taking an element) on the element matching `selector` inside the
   * closed shadow root of the badge host whose corner is at `at` (viewport px), as BiDi can reach
   * it; returns fn's JSON value, or null when there is no such badge or element.
   */
  async inBadge({ page: id, at, selector, fn }) {
    const target = { context: context(id) };
    const boxes = json(await evaluate(id, `() => JSON.stringify([...document.querySelectorAll("deepfake-check-badge")].map((h) => {
      const r = h.getBoundingClientRect(); return {left: r.left, top: r.top}; }))`));
    const i = boxes.findIndex((b) => Math.abs(b.left - at.left) < 3 && Math.abs(b.top - at.top) < 3);
    if (i < 0) return null;
    const hosts = await bidi("script.evaluate", {
      expression: `[...document.querySelectorAll("deepfake-check-badge")]`, target, awaitPromise: false,
      serializationOptions: { maxDomDepth: 1, includeShadowTree: "all" },
    });
    const shadow = hosts.result.value[i]?.value?.shadowRoot;
    if (!shadow?.sharedId) return null;
    const r = await bidi("script.callFunction", {
      functionDeclaration: `function (sel) { const el = this.querySelector(sel); return el ? JSON.stringify((${fn})(el) ?? null) : "null"; }`,
      this: { sharedId: shadow.sharedId }, target, awaitPromise: true, arguments: [{ type: "string", value: selector }],
    });
    if (r.type === "exception") throw new Error(`in badge: ${r.exceptionDetails.text}`);
    return json(r.result);
  },

  async mouse({ page: id, x, y, button = "left" }) {
    await page(id).mouse.click(x, y, { button });
  },

  async upload({ page: id, selector, path }) {
    const input = await page(id).$(selector);
    await input.uploadFile(path);
  },

  async screenshot({ page: id, path, fullPage = false }) {
    await page(id).screenshot({ path, fullPage });
  },

  /**
   * Every badge host on the page with its box and the data-* attributes inside its closed shadow
   * root: BiDi serialises closed shadow roots for the driver (includeShadowTree "all"), as DevTools
   * shows them; the page's own scripts cannot reach them.
   */
  async badges({ page: id }) {
    const target = { context: context(id) };
    const boxes = json(await evaluate(id, `() => JSON.stringify([...document.querySelectorAll("deepfake-check-badge")].map((h) => {
      const r = h.getBoundingClientRect(); return {left: r.left, top: r.top, shown: getComputedStyle(h).display !== "none"}; }))`));
    const r = await bidi("script.evaluate", {
      expression: `[...document.querySelectorAll("deepfake-check-badge")]`, target, awaitPromise: false,
      serializationOptions: { maxDomDepth: 6, includeShadowTree: "all" },
    });
    const out = [];
    r.result.value.forEach((node, i) => {
      const walk = (n) => {
        const v = n?.value;
        if (!v) return null;
        const attrs = v.attributes ?? {};
        if ("data-label" in attrs) {
          const first = v.children?.[0]?.value?.attributes; // the badge itself: its title has the detail
          return { ...attrs, "data-title": first?.title ?? "" };
        }
        for (const c of [...(v.shadowRoot ? [v.shadowRoot] : []), ...(v.children ?? [])]) {
          const hit = walk(c);
          if (hit) return hit;
        }
        return null;
      };
      const data = walk(node);
      if (!data || !boxes[i]?.shown) return;
      const entry = { left: boxes[i].left, top: boxes[i].top };
      for (const [k, v] of Object.entries(data)) if (k.startsWith("data-")) entry[k.slice(5)] = v;
      out.push(entry);
    });
    return out;
  },

  /**
   * The first element inside a badge's closed shadow root with attribute `attr` (equal to `value`
   * when given), scrolled into view: its attributes and the centre of its box, for a real click there.
   */
  async shadowFind({ page: id, attr, value = null }) {
    const target = { context: context(id) };
    const r = await bidi("script.evaluate", {
      expression: `[...document.querySelectorAll("deepfake-check-badge")]`, target, awaitPromise: false,
      serializationOptions: { maxDomDepth: 16, includeShadowTree: "all" },
    });
    let found = null;
    const walk = (n) => {
      const v = n?.value;
      if (!v || found) return;
      const attrs = v.attributes ?? {};
      if (attr in attrs && (value === null || attrs[attr] === value)) {
        found = { sharedId: n.sharedId, attributes: attrs };
        return;
      }
      for (const c of [...(v.shadowRoot ? [v.shadowRoot] : []), ...(v.children ?? [])]) walk(c);
    };
    r.result.value.forEach(walk);
    if (!found) return null;
    const box = await bidi("script.callFunction", {
      functionDeclaration: `(el) => { el.scrollIntoView({block: "center"}); const r = el.getBoundingClientRect();
        return JSON.stringify([r.x + r.width / 2, r.y + r.height / 2]); }`,
      target, awaitPromise: false, arguments: [{ sharedId: found.sharedId }],
    });
    const [x, y] = JSON.parse(box.result.value);
    return { attributes: found.attributes, x, y };
  },

  async quit() {
    await browser?.close();
    browser = null;
    return true;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let msg;
  try {
    msg = JSON.parse(line);
    const value = await commands[msg.cmd](msg);
    process.stdout.write(JSON.stringify({ id: msg.id, ok: true, value: value ?? null }) + "\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: msg?.id, ok: false, error: String(e?.stack || e) }) + "\n");
  }
  if (msg?.cmd === "quit") break;
}
process.exit(0);
