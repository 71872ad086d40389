// @ts-check
// Facebook: posts are [role=article] or [aria-posinset] (a feed's units); videos live at /watch/?v=,
// /reel/<id>, /<page>/videos/<id>.
import { absoluteHttp, composedClosest, findLink, hostIs, pageUrlOf, queryVideos } from "./dom.js";

const VIDEO = /^\/(?:watch\/?\?v=\d+|reel\/\d+|[\w.-]+\/videos\/(?:[\w.-]+\/)?\d+|[\w.-]+\/videos\/[\w-]+)/;
const LINKS = 'a[href*="/videos/"], a[href*="/reel/"], a[href*="/watch/?v="], a[href*="/watch?v="]';

function canonical(u) {
  if (/^\/watch\/?$/.test(u.pathname)) {
    const v = u.searchParams.get("v");
    return v ? `${u.origin}/watch/?v=${encodeURIComponent(v)}` : null;
  }
  return `${u.origin}${u.pathname.replace(/\/$/, "")}`;
}

export default {
  id: "facebook",
  name: "Facebook",
  matches: (url) => hostIs(url, "facebook.com", "fb.watch"),
  findVideos: queryVideos,
  resolve(video, pageUrl = pageUrlOf(video)) {
    const post = composedClosest(video, '[role="article"], [aria-posinset], [data-pagelet^="FeedUnit"], [data-pagelet^="TimelineFeedUnit"]');
    const link = findLink(post, LINKS, VIDEO, pageUrl);
    if (link) return canonical(link);
    const page = absoluteHttp(pageUrl);
    return page && VIDEO.test(page.pathname + page.search) ? canonical(page) : null;
  },
};
