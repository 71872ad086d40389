// @ts-check
// The site adapters. Adding a site: write sites/<site>.js ({id, name, matches, findVideos, resolve})
// and list it here. The generic adapter is the fallback and is never matched first.
import facebook from "./facebook.js";
import generic from "./generic.js";
import instagram from "./instagram.js";
import reddit from "./reddit.js";
import tiktok from "./tiktok.js";
import x from "./x.js";
import youtube from "./youtube.js";

export const SITES = [youtube, x, instagram, tiktok, facebook, reddit];
export { generic };

export function adapterFor(url) {
  return SITES.find((s) => s.matches(url)) ?? generic;
}
