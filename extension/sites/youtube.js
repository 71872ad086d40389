// @ts-check
// YouTube: watch pages, Shorts, and feed tiles (home, search, sidebar) whose inline preview plays,
// including the one hover preview (ytd-video-preview) YouTube moves over whichever tile is hovered.
import { absoluteHttp, composedClosest, findLink, hostIs, pageUrlOf, queryVideos } from "./dom.js";

const TILE = [
  "ytd-rich-item-renderer", "ytd-video-renderer", "ytd-grid-video-renderer", "ytd-compact-video-renderer",
  "ytd-reel-item-renderer", "ytm-shorts-lockup-view-model", "ytm-shorts-lockup-view-model-v2", "yt-lockup-view-model",
  "ytd-video-preview", "ytd-playlist-video-renderer",
].join(",");
const LINK = 'a[href*="/watch?"], a[href*="/shorts/"]';
const VIDEO_PATH = /^\/(watch\?|shorts\/)/;

/** https://www.youtube.com/watch?v=ID or /shorts/ID, with tracking and playlist parameters dropped. */
export function canonical(u) {
  if (u.pathname === "/watch") {
    const v = u.searchParams.get("v");
    return v ? `${u.origin}/watch?v=${encodeURIComponent(v)}` : null;
  }
  const m = u.pathname.match(/^\/shorts\/([\w-]+)/);
  return m ? `${u.origin}/shorts/${m[1]}` : null;
}

export default {
  id: "youtube",
  name: "YouTube",
  matches: (url) => hostIs(url, "youtube.com", "youtube-nocookie.com"),
  findVideos: queryVideos,
  resolve(video, pageUrl = pageUrlOf(video)) {
    const tile = composedClosest(video, TILE);
    if (tile) {
      const link = findLink(tile, LINK, VIDEO_PATH, pageUrl);
      if (link) return canonical(link);
    }
    // The main player (watch page) or the active Short: the page is the video.
    const page = absoluteHttp(pageUrl);
    return page ? canonical(page) : null;
  },
};
