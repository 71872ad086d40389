// @ts-check
// Reddit: new Reddit wraps each post in <shreddit-post permalink="/r/…/comments/…/"> and plays
// video inside <shreddit-player>'s shadow root; old Reddit uses .thing[data-permalink].
import { absoluteHttp, composedClosest, findLink, hostIs, pageUrlOf, queryVideos } from "./dom.js";

const COMMENTS = /^\/r\/[\w]+\/comments\/([\w]+)/;

function canonical(u) {
  const m = u.pathname.match(/^\/r\/[\w]+\/comments\/[\w]+(?:\/[^/]*)?/);
  return m ? `${u.origin}${m[0].replace(/\/?$/, "/")}` : null;
}

export default {
  id: "reddit",
  name: "Reddit",
  matches: (url) => hostIs(url, "reddit.com"),
  findVideos: queryVideos,
  resolve(video, pageUrl = pageUrlOf(video)) {
    const post = composedClosest(video, "shreddit-post, .thing[data-permalink], article");
    const attr = post?.getAttribute("permalink") || post?.getAttribute("data-permalink");
    const link = (attr && absoluteHttp(attr, pageUrl)) || findLink(post, 'a[href*="/comments/"]', COMMENTS, pageUrl);
    if (link && COMMENTS.test(link.pathname)) return canonical(link);
    const page = absoluteHttp(pageUrl);
    return page && COMMENTS.test(page.pathname) ? canonical(page) : null;
  },
};
