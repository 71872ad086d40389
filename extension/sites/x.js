// @ts-check
// X / Twitter: each post is an <article>; its timestamp links to /<user>/status/<id>.
import { absoluteHttp, composedClosest, findLink, hostIs, pageUrlOf, queryVideos } from "./dom.js";

const STATUS = /\/status\/(\d+|[\w-]+)/;

function canonical(u) {
  const m = u.pathname.match(/^(.*?\/status\/[\w-]+)/);
  return m ? `${u.origin}${m[1]}` : null;
}

export default {
  id: "x",
  name: "X (Twitter)",
  matches: (url) => hostIs(url, "x.com", "twitter.com"),
  findVideos: queryVideos,
  resolve(video, pageUrl = pageUrlOf(video)) {
    const article = composedClosest(video, "article");
    // The <time> link is the post's own; other /status/ links in a post may be quoted posts.
    const timeLink = article?.querySelector('a[href*="/status/"] time')?.closest("a");
    const link = (timeLink && absoluteHttp(timeLink.getAttribute("href"), pageUrl))
      || findLink(article, 'a[href*="/status/"]', STATUS, pageUrl);
    if (link) return canonical(link);
    const page = absoluteHttp(pageUrl);
    return page && STATUS.test(page.pathname) ? canonical(page) : null;
  },
};
