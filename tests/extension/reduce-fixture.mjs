// Reduces a page saved from a site (docs/extension.md, "Site fixtures") to a fixture: the elements
// on the way from the document to every <video>, link and <time>, with the attributes the site
// adapters read, and nothing else: no text, no scripts, styles or images, no other attributes
// (aria-labels, alt texts and titles carry names). Open shadow roots saved as
// <template shadowrootmode="open"> are kept. Account names and ids in links are left for a person to
// replace (the docs say how).
//
//   node tests/extension/reduce-fixture.mjs saved.html > tests/extension/fixtures/<site>-<page>-full.html
import { readFileSync } from "node:fs";
import { parseHTML } from "linkedom";

/** The attributes kept: what the adapters, the fixture loader and a reader of the fixture need. */
export const KEPT_ATTRIBUTES = new Set([
  "id", "class", "role", "href", "src", "data-e2e", "data-testid", "data-pagelet", "aria-posinset", "permalink",
  "data-permalink", "post-type", "slot", "shadowrootmode", "datetime", "lang", "dir",
]);
const DROPPED = "script, style, link, meta, noscript, svg, img, picture, source, iframe, canvas, input, textarea, select, button";

/** Is this element one the fixture is about: a video, a link, a post's timestamp (X's permalink is the link around it)? */
function keeper(el) {
  return el.localName === "video" || el.localName === "time" || (el.localName === "a" && el.hasAttribute("href"));
}

/** @param {Element | DocumentFragment} root */
function prune(root) {
  for (const el of [...root.querySelectorAll(DROPPED)]) el.remove();
  for (const t of [...root.querySelectorAll("template[shadowrootmode]")]) prune(t.content ?? t);
  const keep = (el) => keeper(el) || [...el.children].some((c) => keep(c))
    || (el.localName === "template" && el.hasAttribute("shadowrootmode") && [...(el.content ?? el).children].some((c) => keep(c)));
  for (const el of [...root.children]) {
    if (!keep(el)) el.remove();
    else prune(el);
  }
}

function clean(node) {
  for (const child of [...node.childNodes]) {
    if (child.nodeType === 3 || child.nodeType === 8) child.remove(); // text, comments
    else if (child.nodeType === 1) {
      for (const a of [...child.attributes]) if (!KEPT_ATTRIBUTES.has(a.name)) child.removeAttribute(a.name);
      if (child.localName === "video" && /^(blob:|data:)/.test(child.getAttribute("src") ?? "")) child.setAttribute("src", "blob:");
      clean(child.localName === "template" ? (child.content ?? child) : child);
    }
  }
}

/** @param {string} html a saved page @returns {string} the fixture's markup (without its header comment) */
export function reduce(html) {
  const { document } = parseHTML(html);
  const body = document.body ?? document.documentElement;
  prune(body);
  clean(body);
  const indent = (el, depth) => {
    for (const c of [...el.children]) {
      el.insertBefore(document.createTextNode(`\n${"  ".repeat(depth + 1)}`), c);
      indent(c.localName === "template" ? (c.content ?? c) : c, depth + 1);
    }
    if (el.children.length) el.append(document.createTextNode(`\n${"  ".repeat(depth)}`));
  };
  indent(body, 0);
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title></title></head>\n${body.outerHTML}</html>\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.length !== 3) {
    console.error("usage: node tests/extension/reduce-fixture.mjs SAVED.html > tests/extension/fixtures/NAME.html");
    process.exit(2);
  }
  process.stdout.write(reduce(readFileSync(process.argv[2], "utf8")));
}
