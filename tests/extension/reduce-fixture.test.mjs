import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { adapterFor } from "../../extension/sites/index.js";
import { allVideos, loadHtml } from "./fixture-dom.mjs";
import { reduce } from "./reduce-fixture.mjs";

const fixture = (name) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
const resolved = (html, pageUrl) => Object.fromEntries(allVideos(loadHtml(html)).map((v) => [v.id, adapterFor(pageUrl).resolve(v, pageUrl)]));

describe("reducing a saved page to a fixture (docs/extension.md, Site fixtures)", () => {
  const pages = {
    "youtube-watch-full.html": "https://www.youtube.com/watch?v=Mn7kQ2xY4aB",
    "x-status-full.html": "https://x.com/user1/status/1860000000000000001",
    "instagram-post-full.html": "https://www.instagram.com/p/DAbc123XyZ0/",
    "tiktok-foryou-full.html": "https://www.tiktok.com/foryou",
    "facebook-page-full.html": "https://www.facebook.com/examplepage",
    "reddit-feed-full.html": "https://www.reddit.com/r/videos/",
  };
  for (const [name, pageUrl] of Object.entries(pages)) {
    test(`keeps everything the adapter reads: ${name} resolves the same after reduction`, () => {
      const before = resolved(fixture(name), pageUrl);
      assert.ok(Object.keys(before).length >= 2);
      assert.deepEqual(resolved(reduce(fixture(name)), pageUrl), before);
    });
  }
  test("drops text, scripts, styles, images and attributes that carry names", () => {
    const saved = `<!doctype html><html><head><script>var user = "Jane Roe";</script><style>.x{}</style></head><body>
      <div class="feed" aria-label="Posts by Jane Roe" data-user-email="jane@example.com"><p>Jane Roe wrote this</p>
        <article data-testid="tweet"><img alt="Jane's face" src="https://pbs.example/jane.jpg"><svg><title>Jane</title></svg>
          <a href="/janeroe/status/1" title="Jane Roe"><time datetime="2025-01-01T00:00:00Z">Jan 1</time></a>
          <video src="blob:https://x.com/abc" poster="https://pbs.example/poster-jane.jpg"></video></article>
        <aside><p>Trending: something</p></aside></div></body></html>`;
    const out = reduce(saved);
    for (const gone of ["Jane Roe", "jane@example.com", "Jane's face", "<script", "<style", "<img", "<svg", "poster", "Trending", "aside", "Jan 1"]) {
      assert.ok(!out.includes(gone), `${gone} is still in:\n${out}`);
    }
    assert.match(out, /<a href="\/janeroe\/status\/1">\s*<time datetime="2025-01-01T00:00:00Z"><\/time>\s*<\/a>/);
    assert.match(out, /<video src="blob:"><\/video>/);
  });
});
