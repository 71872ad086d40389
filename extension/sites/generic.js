// @ts-check
// Any other site: the video's own file when it has a real http(s) address, else the page
// (the server can often find the video on it). blob:/MSE sources never leave the browser.
import { absoluteHttp, pageUrlOf, queryVideos } from "./dom.js";

export default {
  id: "generic",
  name: "Other sites",
  matches: () => true,
  findVideos: queryVideos,
  resolve(video, pageUrl = pageUrlOf(video)) {
    // currentSrc is what plays; before the browser picks a source, the first <source> is the candidate.
    const raw = video.currentSrc || video.getAttribute?.("src") || video.querySelector?.("source[src]")?.getAttribute("src") || "";
    const src = absoluteHttp(raw, pageUrl);
    if (src) return src.href;
    return /^https?:\/\//i.test(pageUrl) ? pageUrl : null;
  },
};
