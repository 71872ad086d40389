// The words of the extension's pages (linkedom): the popup's last checks and the status line.
import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";

import { parseHTML } from "linkedom";

const { document } = parseHTML("<!doctype html><html><body></body></html>");
globalThis.document = document;

const { recentLine } = await import("../../extension/shared/recent.js");
const { showStatus } = await import("../../extension/pages/status-view.js");

suite("the popup's last checks", () => {
  const now = Date.parse("2026-12-05T12:00:00Z");
  test("say what, on which site and when, not the raw address", () => {
    assert.deepEqual(recentLine({ url: "https://x.com/alice/status/1", pageUrl: "https://x.com/home", kind: "video", time: now - 5 * 60_000 }, now),
      { what: "X (Twitter) post", when: "5 min ago", address: "https://x.com/alice/status/1" });
    assert.deepEqual(recentLine({ url: "capture:https://blog.example/page#3", pageUrl: "https://blog.example/page", kind: "video", time: now - 10_000 }, now),
      { what: "what played on blog.example", when: "just now", address: "https://blog.example/page" });
    assert.equal(recentLine({ url: "http://127.0.0.1:9/media/a.mp4", pageUrl: "https://www.blog.example/", kind: "video", time: now - 3 * 3600_000 }, now).what,
      "video on blog.example");
    assert.equal(recentLine({ url: "live:https://tv.example/#1", pageUrl: null, kind: "video", time: now - 30 * 3600_000 }, now).when, "yesterday");
  });
});

suite("the status line", () => {
  test("says its title once, then what to do", () => {
    const el = document.createElement("div");
    for (const [state, message] of [["not_paired", "The extension has no token for this server yet: open the pairing link."],
      ["not_running", "Cannot reach the Deepfake Check server at https://127.0.0.1:8765."]]) {
      showStatus(el, { state, message });
      const title = el.querySelector("strong").textContent;
      assert.equal(el.textContent, `${title} ${message}`);
      assert.equal(el.textContent.toLowerCase().split(title.slice(0, -1).toLowerCase()).length, 2, el.textContent);
    }
  });
});
