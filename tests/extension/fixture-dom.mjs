// Loads a saved fixture page into linkedom (no browser, no network) the way a browser would see it:
// {{MEDIA}} filled in and declarative shadow roots (<template shadowrootmode>) attached.
import { readFileSync } from "node:fs";
import { parseHTML } from "linkedom";

export const MEDIA = "http://127.0.0.1:9999";

export function loadFixture(name) {
  return loadHtml(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));
}

/** A page's markup as loadFixture loads a fixture. @param {string} markup */
export function loadHtml(markup) {
  const html = markup.replaceAll("{{MEDIA}}", MEDIA);
  const { document } = parseHTML(html);
  for (const t of [...document.querySelectorAll("template[shadowrootmode]")]) {
    const root = t.parentNode.attachShadow({ mode: t.getAttribute("shadowrootmode") });
    root.innerHTML = t.innerHTML;
    t.remove();
  }
  return document;
}

/** Every <video> in the document and its open shadow roots, as the content script's finder sees them. */
export function allVideos(document) {
  const out = [...document.querySelectorAll("video")];
  for (const el of document.querySelectorAll("*")) {
    if (el.shadowRoot) out.push(...el.shadowRoot.querySelectorAll("video"));
  }
  return out;
}
