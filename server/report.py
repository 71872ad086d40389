"""What a scan (server/scan.py) ends with: a summary in numbers and a self-contained HTML report
(one file, images inline) beside the JSONL: a histogram of P(fake), the most suspicious clips with
a thumbnail and their heatmap, the errors.

The pictures of the most suspicious clips so far are kept in a small sidecar file
(`results.assets.json`) while the scan runs, so a resumed scan's report still shows them."""
from __future__ import annotations

import base64
import html
import json
import os
import statistics
from collections import Counter
from pathlib import Path

from .private import write_private

TOP = 12  # suspicious clips in the report
BINS = 20  # histogram bins over [0, 1]
STAGES = ("fetch", "decode", "detect", "crop", "model", "heatmap")


def html_path(out: Path) -> Path:
    return out.with_suffix(".html")


def assets_path(out: Path) -> Path:
    return out.with_suffix(".assets.json")


class Assets:
    """Thumbnails and heatmaps (base64) of the TOP most suspicious clips seen, by input."""

    def __init__(self, path: Path):
        self.path = path
        self.items: dict[str, dict] = {}
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                self.items = loaded
        except (OSError, ValueError):
            pass

    def offer(self, row: dict, thumb: bytes, heatmap: bytes) -> None:
        p = row.get("p_fake")
        if p is None or not (thumb or heatmap):
            return
        worst = min(self.items.values(), key=lambda a: a["p_fake"], default=None)
        if len(self.items) >= TOP and worst is not None and p <= worst["p_fake"]:
            return
        self.items[row["input"]] = {"p_fake": p, "thumb": base64.b64encode(thumb).decode() if thumb else None,
                                    "heatmap": base64.b64encode(heatmap).decode() if heatmap else None}
        while len(self.items) > TOP:
            del self.items[min(self.items, key=lambda k: self.items[k]["p_fake"])]

    def save(self) -> None:
        # thumbnails of the user's clips: owner only, like the results beside them should be
        write_private(self.path, json.dumps(self.items).encode())


def summarise(rows: list[dict], new_rows: list[dict], elapsed_s: float, ray_start_s: float = 0.0) -> dict:
    """Counts per verdict and errors by kind over every row; throughput (start-up included) and
    seconds per clip by stage (mean) over this run's rows."""
    verdicts = Counter(r["verdict"] for r in rows)
    errors = Counter(r.get("error_kind") for r in rows if r["verdict"] == "ERROR")
    stages: dict[str, float] = {}
    for s in (*STAGES, "total"):
        xs = [r["timings_ms"][s] / 1000 for r in new_rows if s in (r.get("timings_ms") or {})]
        if xs:
            stages[s] = round(statistics.fmean(xs), 3)
    return {"inputs": len(rows), "new": len(new_rows), "verdicts": dict(verdicts), "errors": dict(errors),
            "elapsed_s": round(elapsed_s, 1), "ray_start_s": round(ray_start_s, 1), "clips_per_s": round(len(new_rows) / elapsed_s, 3) if elapsed_s > 0 else None,
            "seconds_per_clip": stages}


def summary_text(s: dict) -> str:
    lines = [f"{s['inputs']} inputs answered ({s['new']} in this run, {s['elapsed_s']} s"
             + (f" of which {s['ray_start_s']} s starting Ray, {s['clips_per_s']} clips/s)" if s["new"] else ")")]
    lines.append("verdicts: " + (", ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items())) or "none"))
    if s["errors"]:
        lines.append("errors:   " + ", ".join(f"{k} {v}" for k, v in sorted(s["errors"].items())))
    if s["seconds_per_clip"]:
        lines.append("s/clip:   " + ", ".join(f"{k} {v:.2f}" for k, v in s["seconds_per_clip"].items())
                     + "  (mean per clip in its worker; stages of different clips overlap)")
    return "\n".join(lines)


def _histogram_svg(ps: list[float], threshold: float | None) -> str:
    counts = [0] * BINS
    for p in ps:
        counts[min(BINS - 1, int(p * BINS))] += 1
    top = max(counts, default=0) or 1
    w, h, bw = 600, 160, 600 / BINS
    bars = "".join(
        f'<rect x="{i * bw + 1:.1f}" y="{h - c / top * (h - 10):.1f}" width="{bw - 2:.1f}" height="{c / top * (h - 10):.1f}" '
        f'fill="{"#c0392b" if (i + 0.5) / BINS >= (threshold or 0.5) else "#2e86c1"}"><title>{i / BINS:.2f}-{(i + 1) / BINS:.2f}: {c}</title></rect>'
        for i, c in enumerate(counts))
    line = (f'<line x1="{threshold * w:.1f}" y1="0" x2="{threshold * w:.1f}" y2="{h}" stroke="#333" stroke-dasharray="4"/>'
            if threshold is not None else "")
    labels = "".join(f'<text x="{x * w:.0f}" y="{h + 14}" font-size="11" text-anchor="middle">{x:g}</text>'
                     for x in (0, 0.25, 0.5, 0.75, 1.0))
    return f'<svg viewBox="-10 0 {w + 20} {h + 20}" width="{w + 20}" height="{h + 20}" role="img">{bars}{line}{labels}</svg>'


def write_html(path: Path, rows: list[dict], assets: Assets, summary: dict) -> None:
    e = html.escape
    scored = [r for r in rows if r.get("p_fake") is not None]
    threshold = scored[0]["threshold"] if scored else None
    top = sorted(scored, key=lambda r: r["p_fake"], reverse=True)[:TOP]
    cards = []
    for r in top:
        a = assets.items.get(r["input"], {})
        imgs = "".join(f'<img alt="{label}" src="data:{mime};base64,{a[k]}">'
                       for k, mime, label in (("thumb", "image/jpeg", "thumbnail"), ("heatmap", "image/png", "heatmap"))
                       if a.get(k))
        cards.append(f'<div class="card"><div class="imgs">{imgs or "<em>no picture</em>"}</div>'
                     f'<b class="{e(r["verdict"])}">{e(r["verdict"])}</b> P(fake) {r["p_fake"]:.3f} · '
                     f'{len(r.get("faces") or [])} face(s)<br><code>{e(r["input"])}</code></div>')
    errors = [r for r in rows if r["verdict"] == "ERROR"]
    err_rows = "".join(f'<tr><td>{e(str(r.get("error_kind")))}</td><td><code>{e(r["input"])}</code></td>'
                       f'<td>{e(r.get("error") or "")}</td></tr>' for r in errors)
    no_face = sum(1 for r in rows if r["verdict"] == "NO_FACE")
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Deepfake Check scan</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }} code {{ word-break: break-all; }}
pre {{ white-space: pre-wrap; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 1em; }} .card {{ width: 480px; border: 1px solid #ccc; padding: .6em; }}
.imgs img {{ height: 160px; margin-right: .4em; }} .FAKE {{ color: #c0392b; }} .REAL {{ color: #1e8449; }}
.UNCERTAIN {{ color: #b9770e; }} table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .2em .5em; }}
</style></head><body>
<h1>Deepfake Check scan</h1>
<pre>{e(summary_text(summary))}</pre>
<h2>P(fake) of {len(scored)} clips with a face</h2>
{_histogram_svg([r["p_fake"] for r in scored], threshold)}
<p>Dashed line: the model's threshold. {no_face} clip(s) without a face large enough to judge.
Heatmaps are computed for FAKE and UNCERTAIN clips.</p>
<h2>Most suspicious</h2>
<div class="cards">{"".join(cards) or "<p>No clip with a face.</p>"}</div>
<h2>Errors ({len(errors)})</h2>
{f"<table><tr><th>kind</th><th>input</th><th>message</th></tr>{err_rows}</table>" if errors else "<p>None.</p>"}
</body></html>
"""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
