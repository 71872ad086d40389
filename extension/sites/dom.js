// @ts-check
// Small DOM helpers the site adapters share. They cross shadow-root boundaries because several
// sites (Reddit's <shreddit-player>, YouTube's web components) put the <video> in a shadow root.

/** Like Element.closest, but continues through shadow hosts. */
export function composedClosest(el, selector) {
  let node = el;
  while (node) {
    const hit = node.closest?.(selector);
    if (hit) return hit;
    const root = node.getRootNode?.();
    node = root && root !== node && root.host ? root.host : null;
  }
  return null;
}

/** Every <video> in root (root itself included), without entering shadow roots (the finder does). */
export function queryVideos(root) {
  const out = [];
  if (root?.nodeName === "VIDEO") out.push(root);
  if (root?.querySelectorAll) out.push(...root.querySelectorAll("video"));
  return out;
}

/** An absolute http(s) URL from an href/attribute value, or null. */
export function absoluteHttp(href, base) {
  if (!href) return null;
  try {
    const u = new URL(href, base);
    return u.protocol === "http:" || u.protocol === "https:" ? u : null;
  } catch {
    return null;
  }
}

/** The first link inside container (itself included) whose href matches re, as a URL. */
export function findLink(container, selector, re, base) {
  if (!container) return null;
  const links = [];
  if (container.matches?.(selector)) links.push(container);
  links.push(...container.querySelectorAll(selector));
  for (const a of links) {
    const u = absoluteHttp(a.getAttribute("href"), base);
    if (u && (!re || re.test(u.pathname + u.search))) return u;
  }
  return null;
}

/** The page URL a video lives on (the adapters take it as an argument so tests can pass one). */
export function pageUrlOf(el) {
  return el?.ownerDocument?.defaultView?.location?.href ?? el?.ownerDocument?.URL ?? "";
}

export function hostIs(url, ...domains) {
  let host;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  return domains.some((d) => host === d || host.endsWith("." + d));
}
