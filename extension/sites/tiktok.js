// @ts-check
// TikTok: feed items link to /@user/video/<id>, or (the For You feed today) carry no such link: the
// player's wrapper has the video's id (div#xgwrapper-0-<id>) and the item links to its author. A
// video page is the video.
import { absoluteHttp, composedClosest, findLink, hostIs, pageUrlOf, queryVideos } from "./dom.js";

const VIDEO = /^\/@[\w.-]*\/(video|photo)\/(\d+|[\w-]+)/;
const ITEM = '[data-e2e="recommend-list-item-container"], [data-e2e="user-post-item"], [data-e2e="feed-video"], article, '
  + '[class*="DivItemContainer"]';
const PLAYER_ID = /^xgwrapper-\d+-(\d+)$/;
const AUTHOR = /^\/@([\w.-]+)\/?$/;

/** /@user/video/<id> from the player wrapper's id and the item's author link (null without either). */
function fromPlayer(video, item, pageUrl) {
  const id = composedClosest(video, '[id^="xgwrapper-"]')?.id.match(PLAYER_ID)?.[1];
  const author = id && findLink(item, 'a[data-e2e="video-author-avatar"], a[data-e2e="video-author-uniqueid"], a[href*="/@"]', AUTHOR, pageUrl);
  return author ? `${author.origin}/@${author.pathname.match(AUTHOR)[1]}/video/${id}` : null;
}

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
    const fromIds = item && fromPlayer(video, composedClosest(item.parentElement, ITEM) ?? item, pageUrl);
    if (fromIds) return fromIds;
    const page = absoluteHttp(pageUrl);
    return page && VIDEO.test(page.pathname) ? canonical(page) : null;
  },
};
