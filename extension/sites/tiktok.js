// @ts-check
// TikTok: feed items link to /@user/video/<id>; a video page is the video.
import { absoluteHttp, composedClosest, findLink, hostIs, pageUrlOf, queryVideos } from "./dom.js";

const VIDEO = /^\/@[\w.-]*\/(video|photo)\/(\d+|[\w-]+)/;
const ITEM = '[data-e2e="recommend-list-item-container"], [data-e2e="user-post-item"], article, [class*="DivItemContainer"]';

function canonical(u) {
  const m = u.pathname.match(VIDEO);
  return m ? `${u.origin}${m[0]}` : null;
}

export default {
  id: "tiktok",
  name: "TikTok",
  matches: (url) => hostIs(url, "tiktok.com"),
  findVideos: queryVideos,
  resolve(video, pageUrl = pageUrlOf(video)) {
    const item = composedClosest(video, ITEM);
    const link = findLink(item, 'a[href*="/video/"]', VIDEO, pageUrl);
    if (link) return canonical(link);
    const page = absoluteHttp(pageUrl);
    return page && VIDEO.test(page.pathname) ? canonical(page) : null;
  },
};
