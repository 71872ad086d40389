// @ts-check
// Finds <video> elements as they appear (MutationObserver, open shadow roots included) and reports
// which are visible (IntersectionObserver). Everything it sets up is torn down when `signal` aborts,
// so a single-page app's navigations never pile up observers.

export const VISIBLE_RATIO = 0.5;

/**
 * @typedef {object} WatchOptions
 * @property {Document} [root]
 * @property {(node: ParentNode) => Iterable<Element>} [find]  the site adapter's findVideos
 * @property {(video: Element) => void} [onVisible]  at least VISIBLE_RATIO of it is in view
 * @property {(video: Element) => void} [onHidden]
 * @property {(video: Element) => void} [onRemoved]  it left the document
 * @property {() => void} [onMutate]  after each batch of DOM changes
 * @property {AbortSignal} [signal]  aborting it stops everything
 */

/** @param {WatchOptions} options */
export function watchVideos({
  root = document,
  find = (node) => node.querySelectorAll?.("video") ?? [],
  onVisible = () => {},
  onHidden = () => {},
  onRemoved = () => {},
  onMutate = () => {},
  signal,
}) {
  const tracked = new Set();
  const visible = new Set();
  const roots = new WeakSet();

  const io = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const isVisible = e.isIntersecting && e.intersectionRatio >= VISIBLE_RATIO - 1e-3;
      if (isVisible && !visible.has(e.target)) {
        visible.add(e.target);
        onVisible(e.target);
      } else if (!isVisible && visible.has(e.target)) {
        visible.delete(e.target);
        onHidden(e.target);
      }
    }
  }, { threshold: [0, VISIBLE_RATIO, 1] });

  const add = (video) => {
    if (video?.nodeName !== "VIDEO" || tracked.has(video)) return;
    tracked.add(video);
    io.observe(video);
  };

  const sweep = () => {
    for (const v of tracked) {
      if (!v.isConnected) {
        tracked.delete(v);
        visible.delete(v);
        io.unobserve(v);
        onRemoved(v);
      }
    }
  };

  const mo = new MutationObserver((records) => {
    let removed = false;
    for (const r of records) {
      for (const n of r.addedNodes) if (n.nodeType === 1) scan(n);
      if (r.removedNodes.length) removed = true;
    }
    if (removed) sweep();
    onMutate();
  });

  function observeRoot(r) {
    if (roots.has(r)) return;
    roots.add(r);
    mo.observe(r, { childList: true, subtree: true });
  }

  function scan(node) {
    if (node.nodeName === "VIDEO") add(node);
    for (const v of find(node)) add(v);
    // Open shadow roots: closed ones are invisible to us, as they are meant to be.
    const hosts = node.shadowRoot ? [node] : [];
    if (node.querySelectorAll) for (const el of node.querySelectorAll("*")) if (el.shadowRoot) hosts.push(el);
    for (const h of hosts) {
      observeRoot(h.shadowRoot);
      scan(h.shadowRoot);
    }
  }

  observeRoot(root);
  scan(root.documentElement ?? root);

  signal?.addEventListener("abort", () => {
    mo.disconnect();
    io.disconnect();
    tracked.clear();
    visible.clear();
  }, { once: true });

  return { tracked, visible, rescan: () => scan(root.documentElement ?? root) };
}
