"""Automatic badges on feed pages that reproduce each supported site, against the real server."""
from __future__ import annotations

import pytest

from harness import badge, expected_label, sw_eval, wait_badge

pytestmark = pytest.mark.browser


def open_feed(context, fixture_web, host: str):
    page = context.new_page()
    page.goto(fixture_web.page_url(host))
    return page


def test_x_feed_badges_show_the_servers_verdict_for_each_visible_video(paired, server, fixture_web, out_dir):
    page = open_feed(paired, fixture_web, "x.com")
    base = fixture_web.http_base
    for css, url in [("#v-face1", f"{base}/alice/status/face1"), ("#v-noface", f"{base}/bob/status/noface")]:
        shown = wait_badge(page, css)
        truth = server.wait_done(url)
        assert truth["status"] == "done", truth
        assert shown["url"] == url
        assert shown["label"] == expected_label(truth["result"]), (css, shown, truth["result"]["verdict"])
    page.screenshot(path=str(out_dir / "x-feed.png"))
    page.close()
