// @ts-check
// Instagram: feed posts are <article>s linking to /p/<code>/ or /reel/<code>/; post pages are the video.
import { absoluteHttp, composedClosest, findLink, hostIs, pageUrlOf, queryVideos } from "./dom.js";

const POST = /^\/(?:[\w.]+\/)?(p|reels?|tv)\/([\w-]+)/;

function canonical(u) {
  const m = u.pathname.match(POST);
  return m ? `${u.origin}/${m[1] === "reels" ? "reel" : m[1]}/${m[2]}/` : null;
}

export default {
  id: "instagram",
  name: "Instagram",
  matches: (url) => hostIs(url, "instagram.com"),
  findVideos: queryVideos,
  resolve(video, pageUrl = pageUrlOf(video)) {
    const page = absoluteHttp(pageUrl);
    // On a post or reel page the page is the video (its <article> also links to other posts).
    if (page && POST.test(page.pathname)) return canonical(page);
    const article = composedClosest(video, "article");
    const link = findLink(article, 'a[href*="/p/"], a[href*="/reel/"], a[href*="/reels/"], a[href*="/tv/"]', POST, pageUrl);
    return link ? canonical(link) : null;
  },
};
