"""Open a generated report in headless Chromium (Debian's `chromium`, installed by .ci/run):
no console message at all, charts and table in the live DOM, and a screenshot that is a real
picture, not a blank page.

Console messages are read from Chromium's own log (`--enable-logging=stderr --v=0` prints every
console call, uncaught exception and CSP violation as `INFO:CONSOLE`): no DevTools client and no
extra dependency. The report's Content-Security-Policy (`default-src 'none'`) turns any attempt to
fetch from the network into such a message, so this test also proves the report is offline.
"""

from __future__ import annotations

import html as html_module
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from perfbench.report.page import build_report
from perfbench.results.rundir import RunDir

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (apt-get install chromium; .ci/run does this)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--window-size=1400,3000",
    "--virtual-time-budget=3000",  # let the table script and layout settle before the dump
]


def _chromium(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="perfbench-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_in_headless_chromium(fake_run: RunDir, tmp_path: Path) -> None:
    url = build_report(fake_run.path).resolve().as_uri()

    dom = _chromium(url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == [], "console messages while loading the report"
    html = dom.stdout
    assert 'id="results-table"' in html
    assert len(re.findall(r"<tr data-status=", html)) == 17  # every point, every status
    assert len(re.findall(r"<svg\b", html)) >= 5  # the charts are in the live DOM
    # the table script ran: it writes the "N of M points shown" counter
    assert "17 of 17 points shown" in html
    assert "<script>alert" not in html

    shot = tmp_path / "report.png"
    run = _chromium(url, f"--screenshot={shot}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console(run.stderr) == []
    # a blank 1400x3000 page compresses to a few kB; charts, tables and text make it ~300 kB
    assert shot.stat().st_size > 100_000


def test_compare_page_in_headless_chromium(fake_run: RunDir, tmp_path: Path) -> None:
    from perfbench.analysis.compare import compare_runs, write_compare_html

    out = write_compare_html(compare_runs(fake_run.path, fake_run.path), tmp_path / "c.html")
    dom = _chromium(out.resolve().as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    assert dom.stdout.count('">same (within noise)</td>') == 13
    assert "No gate" in dom.stdout


PROBE = """<script>
// test probe: click "median ms" once (ascending), then filter to failed points
const t = document.getElementById("results-table");
const heads = Array.from(t.tHead.rows[0].cells);
const col = heads.findIndex(function (h) { return h.textContent.trim() === "median ms"; });
heads[col].click();
const order = Array.from(t.tBodies[0].rows).map(function (r) { return r.cells[col].textContent.trim(); });
document.body.setAttribute("data-sorted", order.join("|"));
const sel = document.getElementById("status-filter");
sel.value = "failed";
sel.dispatchEvent(new Event("change"));
const shown = Array.from(t.tBodies[0].rows).filter(function (r) { return !r.hidden; }).length;
document.body.setAttribute("data-shown", String(shown));
</script>"""


def test_table_sorts_and_filters(fake_run: RunDir, tmp_path: Path) -> None:
    html = build_report(fake_run.path).read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(probe.resolve().as_uri(), "--dump-dom")
    assert _console(dom.stderr) == []
    sorted_cells = re.search(r'data-sorted="([^"]*)"', dom.stdout)
    assert sorted_cells, dom.stdout[-1000:]
    values = sorted_cells.group(1).split("|")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers) and len(numbers) == 13
    assert values[len(numbers) :] == [""] * 4  # points without a result sort last
    assert 'data-shown="1"' in dom.stdout


# test probe: what a reader sees at 1400 px, measured in the laid-out page and written into the
# DOM for --dump-dom. Independent of the report's markup: chart <svg> widths, every badge's right
# edge against whatever clips it, and each `--set k=v` / `--setting k=v` of a command: its first
# and last character on the same line.
LAYOUT_PROBE = """<script>
(function () {
  const out = {window: window.innerWidth};
  out.charts = Array.from(document.querySelectorAll("#charts svg")).map(function (s) {
    return s.getBoundingClientRect().width;
  });
  out.clipped = Array.from(document.querySelectorAll(".badge")).filter(function (b) {
    const r = b.getBoundingClientRect();
    if (r.width === 0) return false;  // inside a closed <details>
    let right = document.documentElement.clientWidth;
    for (let el = b.parentElement; el; el = el.parentElement) {
      if (getComputedStyle(el).overflowX !== "visible") right = Math.min(right, el.getBoundingClientRect().right);
    }
    return r.right > right + 0.5;
  }).map(function (b) { return b.textContent; });
  function top(node, i) {
    const r = document.createRange();
    r.setStart(node, i); r.setEnd(node, i + 1);
    const rects = r.getClientRects();
    return rects.length ? Math.round(rects[0].top) : null;
  }
  out.broken = []; out.wrapped = 0; out.units = 0;
  document.querySelectorAll("#repro pre, #repro code").forEach(function (el) {
    const chars = [];
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      for (let i = 0; i < n.data.length; i++) chars.push([n, i]);
    }
    const text = chars.map(function (c) { return c[0].data[c[1]]; }).join("");
    if (chars.length && top(chars[0][0], chars[0][1]) !== top(chars[chars.length - 1][0], chars[chars.length - 1][1])) out.wrapped += 1;
    const re = /--set(ting)? \\S+/g;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      out.units += 1;
      const a = chars[m.index], b = chars[m.index + m[0].length - 1];
      if (top(a[0], a[1]) !== top(b[0], b[1])) out.broken.push(m[0]);
    }
  });
  document.body.setAttribute("data-probe", JSON.stringify(out));
})();
</script>"""


def _probe(page: Path, tmp_path: Path, probe: str) -> dict:
    """Load `page` with `probe` appended (and its CSP dropped, so the probe may run)."""
    html = page.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    probed = tmp_path / f"probe-{page.name}"
    probed.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = _chromium(probed.resolve().as_uri(), "--dump-dom")
    assert _console(dom.stderr) == [], _console(dom.stderr)
    found = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert found, dom.stdout[-1000:]
    return json.loads(html_module.unescape(found.group(1)))


def test_report_layout_at_1400px(fake_run: RunDir, tmp_path: Path) -> None:
    """Issue 15 item 6: charts use at least 90% of the page width, no badge runs off the right
    edge, and reproduce commands wrap only between arguments."""
    seen = _probe(build_report(fake_run.path), tmp_path, LAYOUT_PROBE)
    assert seen["window"] == 1400
    assert len(seen["charts"]) >= 5
    assert min(seen["charts"]) >= 0.9 * seen["window"], seen["charts"]
    assert seen["clipped"] == []
    assert seen["wrapped"] >= 5 and seen["units"] > 50  # long commands that do wrap ...
    assert seen["broken"] == []  # ... but never inside `--set k=v`


COMPARE_PROBE = """<script>
(function () {
  const heads = Array.from(document.querySelectorAll("th"));
  const verdict = heads.find(function (h) { return h.textContent.trim() === "verdict"; });
  const table = document.querySelector("table").getBoundingClientRect();
  const first = document.querySelector("h1").nextElementSibling;
  document.body.setAttribute("data-probe", JSON.stringify({
    window: window.innerWidth,
    verdict_right: verdict.getBoundingClientRect().right,
    first_text: first.textContent.trim(),
    first_above_table: first.getBoundingClientRect().bottom <= table.top,
  }));
})();
</script>"""


def test_compare_page_at_1400px(tmp_path: Path) -> None:
    """Issue 15 item 9: the pass/fail outcome is the page's first line, and the verdict column is
    on screen at 1400 px."""
    from make_run import make_run

    from perfbench.analysis.compare import compare

    base = make_run(tmp_path / "base", with_flamegraph=False)
    slow = make_run(tmp_path / "slow", scale=1.25, seed=2, with_flamegraph=False)
    page = tmp_path / "compare.html"
    compare(base.path, slow.path, fail_above=10, html=page)
    seen = _probe(page, tmp_path, COMPARE_PROBE)
    assert seen["verdict_right"] <= seen["window"]
    assert seen["first_text"].startswith("FAIL: 13 of 17 point(s) regressed beyond 10%")
    assert seen["first_above_table"]
