import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { SITES, adapterFor, generic } from "../../extension/sites/index.js";
import { allVideos, loadFixture, MEDIA } from "./fixture-dom.mjs";

/** {videoId: resolved URL} for every video on a fixture page, as the matching adapter resolves it. */
function resolveAll(fixture, pageUrl) {
  const doc = loadFixture(fixture);
  const adapter = adapterFor(pageUrl);
  const out = {};
  for (const v of allVideos(doc)) out[v.id] = adapter.resolve(v, pageUrl);
  return { adapter: adapter.id, urls: out };
}

describe("adapter selection by page URL", () => {
  const cases = {
    "https://www.youtube.com/": "youtube",
    "https://m.youtube.com/shorts/abc": "youtube",
    "https://x.com/home": "x",
    "https://twitter.com/alice/status/1": "x",
    "https://www.instagram.com/": "instagram",
    "https://www.tiktok.com/foryou": "tiktok",
    "https://www.facebook.com/": "facebook",
    "https://old.reddit.com/r/videos/": "reddit",
    "https://www.reddit.com/": "reddit",
    "https://example.com/blog": "generic",
    "https://notyoutube.com/watch?v=1": "generic",
    "https://x.com.evil.example/": "generic",
  };
  for (const [url, id] of Object.entries(cases)) {
    test(`${url} uses the ${id} adapter`, () => assert.equal(adapterFor(url).id, id));
  }
  test("every adapter has the same small shape", () => {
    for (const s of [...SITES, generic]) {
      assert.equal(typeof s.id, "string");
      assert.equal(typeof s.matches, "function");
      assert.equal(typeof s.findVideos, "function");
      assert.equal(typeof s.resolve, "function");
    }
  });
});

describe("feed pages resolve each video to its own post", () => {
  test("X: a post's video resolves to its /status/ link, not a quoted post's", () => {
    const { adapter, urls } = resolveAll("x-feed.html", "https://x.com/home");
    assert.equal(adapter, "x");
    assert.deepEqual(urls, {
      "v-face1": `${MEDIA}/alice/status/face1`,
      "v-noface": `${MEDIA}/bob/status/noface`,
      "v-face1-again": `${MEDIA}/alice/status/face1`,
      "v-face2": `${MEDIA}/erin/status/face2`,
    });
  });

  test("X: a video in a post embedded in a reply resolves to the embedded post", () => {
    const { urls } = resolveAll("x-thread.html", "https://x.com/frank/status/face3");
    assert.deepEqual(urls, { "v-main": `${MEDIA}/frank/status/face3`, "v-again": `${MEDIA}/frank/status/face3` });
  });

  test("YouTube home: tiles resolve to canonical /watch?v= and /shorts/ (tracking dropped)", () => {
    const { urls } = resolveAll("youtube-home.html", "https://www.youtube.com/");
    assert.deepEqual(urls, {
      "v-face1": `${MEDIA}/watch?v=face1`,
      "v-noface": `${MEDIA}/shorts/noface`,
      "v-face2": `${MEDIA}/watch?v=face2`,
    });
  });

  test("YouTube watch page: the main player is the page's video; a sidebar tile is its own", () => {
    const { urls } = resolveAll("youtube-watch.html", "https://www.youtube.com/watch?v=main1&t=42s&list=PL1");
    assert.deepEqual(urls, {
      "v-main": "https://www.youtube.com/watch?v=main1",
      "v-side": "https://www.youtube.com/watch?v=side1",
    });
  });

  test("Instagram: posts and reels resolve to /p/ and /reel/ permalinks", () => {
    const { urls } = resolveAll("instagram-feed.html", "https://www.instagram.com/");
    assert.deepEqual(urls, { "v-face1": `${MEDIA}/p/face1/`, "v-noface": `${MEDIA}/reel/noface/` });
  });

  test("Instagram: on a post page the page itself is the video", () => {
    const { urls } = resolveAll("instagram-feed.html", "https://www.instagram.com/reel/Cabc123/?igsh=x");
    assert.equal(urls["v-face1"], "https://www.instagram.com/reel/Cabc123/");
  });

  test("TikTok: feed items resolve to /@user/video/<id>, blob videos included", () => {
    const { urls } = resolveAll("tiktok-foryou.html", "https://www.tiktok.com/foryou");
    assert.deepEqual(urls, {
      "v-face1": `${MEDIA}/@alice/video/face1`,
      "v-face2": "https://www.tiktok.com/@erin/video/face2",
    });
  });

  test("Facebook: posts resolve to /videos/ and /reel/ links", () => {
    const { urls } = resolveAll("facebook-feed.html", "https://www.facebook.com/");
    assert.deepEqual(urls, {
      "v-face1": `${MEDIA}/alicepage/videos/face1`,
      "v-reel": `${MEDIA}/reel/1234567890`,
    });
  });

  test("Reddit: a video inside <shreddit-player>'s shadow root resolves to its post's permalink", () => {
    const { urls } = resolveAll("reddit-feed.html", "https://www.reddit.com/");
    assert.deepEqual(urls, {
      "v-face1": `${MEDIA}/r/videos/comments/face1/a_face_video/`,
      "v-face2": "https://www.reddit.com/r/pics/comments/face2/two_faces/",
    });
  });
});

// Fuller pages, one per site, reflecting how each site structures its pages today (see the comment at
// the top of each fixture and docs/extension.md, "Site fixtures"): every <video> on the page, in
// shadow roots too, must resolve to its own post.
const FULL = {
  youtube: ["youtube-watch-full.html", "https://www.youtube.com/watch?v=Mn7kQ2xY4aB&list=PLx1&index=2&pp=iAQB", {
    "v-main": "https://www.youtube.com/watch?v=Mn7kQ2xY4aB",
    "v-lockup-inline": "https://www.youtube.com/watch?v=Lb5vXy2Np9d",
    "v-short-preview": "https://www.youtube.com/shorts/Sh0rtAb12Cd",
    "v-hover-preview": "https://www.youtube.com/watch?v=Cv7cMp3Rr5e",
  }],
  x: ["x-status-full.html", "https://x.com/user1/status/1860000000000000001", {
    "v-main": "https://x.com/user1/status/1860000000000000001",
    "v-reply": "https://x.com/user2/status/1860000000000000002",
    "v-quoted": "https://x.com/user3/status/1860000000000000003", // yt-dlp takes a quoting post's quoted video
  }],
  instagram: ["instagram-post-full.html", "https://www.instagram.com/p/DAbc123XyZ0/?img_index=1", {
    "v-slide1": "https://www.instagram.com/p/DAbc123XyZ0/",
    "v-slide2": "https://www.instagram.com/p/DAbc123XyZ0/",
  }],
  tiktok: ["tiktok-foryou-full.html", "https://www.tiktok.com/foryou?lang=en", {
    "v-item1": "https://www.tiktok.com/@creator.one/video/7440000000000000001",
    "v-item2": "https://www.tiktok.com/@creator_two/video/7440000000000000002",
    "v-item3": "https://www.tiktok.com/@creator3/video/7440000000000000003",
  }],
  facebook: ["facebook-page-full.html", "https://www.facebook.com/examplepage", {
    "v-page-video": "https://www.facebook.com/examplepage/videos/1122334455667788",
    "v-reel": "https://www.facebook.com/reel/998877665544332",
    "v-watch": "https://www.facebook.com/watch/?v=5566778899001122",
  }],
  reddit: ["reddit-feed-full.html", "https://www.reddit.com/r/videos/", {
    "v-post1": "https://www.reddit.com/r/videos/comments/1abcde1/a_video_post/",
    "v-crosspost": "https://www.reddit.com/r/videos/comments/1abcde2/crossposted_clip/", // yt-dlp follows the crosspost
    "v-post3": "https://www.reddit.com/r/videos/comments/1abcde3/older_player/",
  }],
};

describe("fuller pages of each site: every video resolves to its post", () => {
  test("there is one for every site adapter", () => assert.deepEqual(Object.keys(FULL).sort(), SITES.map((s) => s.id).sort()));
  for (const [site, [fixture, pageUrl, expected]] of Object.entries(FULL)) {
    test(`${site}: ${fixture}`, () => {
      const { adapter, urls } = resolveAll(fixture, pageUrl);
      assert.equal(adapter, site);
      assert.deepEqual(urls, expected); // every <video> on the page, none left unresolved
    });
  }
});

describe("generic adapter", () => {
  test("uses the file's http(s) address, the page's for blob: sources, never a blob: URL", () => {
    const page = "https://blog.example/videos.html";
    const { adapter, urls } = resolveAll("generic-page.html", page);
    assert.equal(adapter, "generic");
    assert.deepEqual(urls, {
      "v-file": `${MEDIA}/media/face1.mp4`,
      "v-blob": page,
      "v-below": `${MEDIA}/media/face2.mp4`,
    });
    for (const u of Object.values(urls)) assert.doesNotMatch(u, /^blob:/);
  });

  test("a blob: video on a non-http page resolves to nothing", () => {
    const doc = loadFixture("generic-page.html");
    assert.equal(generic.resolve(doc.getElementById("v-blob"), "file:///tmp/x.html"), null);
  });

  test("site adapters return null for a video with no post around it on a feed", () => {
    const doc = loadFixture("generic-page.html");
    const v = doc.getElementById("v-blob");
    for (const s of SITES) {
      const home = { youtube: "https://www.youtube.com/", x: "https://x.com/home", instagram: "https://www.instagram.com/",
        tiktok: "https://www.tiktok.com/foryou", facebook: "https://www.facebook.com/", reddit: "https://www.reddit.com/" }[s.id];
      assert.equal(s.resolve(v, home), null, s.id);
    }
  });
});
