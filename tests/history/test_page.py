"""`perfbench history --html`: the page opens offline in headless Chromium with one chart per
point, intervals as bands, and the flagged steps marked; the screenshot is a real picture."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from perfbench.cli import main as cli
from tests.history.synth import records
from tests.history.test_steps import _store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,900"]


def _chromium(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="perfbench-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip


@pytest.fixture
def page(tmp_path: Path) -> Path:
    """Two points over six commits: one with a slowdown and its recovery, one flat with a
    contended record; eager and int8."""
    slow = records([1, 1, 2, 2, 1, 1], per=2, sd=0.03, seed=1)
    flat_key = json.dumps({"batch_size": 64, "threads": 1}, sort_keys=True)
    flat = records([5] * 6, per=2, sd=0.03, seed=2)
    for r in flat:
        r["point_key"] = flat_key
    flat[3].update(contended=True, contention_note="other processes used 1.4 cores")
    speed = records([2.5] * 6, per=2, sd=0.02, seed=3, backend="int8")
    url = _store(tmp_path, slow + flat + speed)
    out = tmp_path / "history.html"
    assert cli.main(["history", "s.py", "--history", url, "--html", str(out)]) == 0
    return out


def test_page_has_a_chart_per_point_bands_and_marked_steps(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.count('<div class="card">') == 2  # one card per point
    assert text.count('class="step"') == 2  # the slowdown and its recovery
    assert text.count('class="band"') == 3  # eager at both points, int8 at one
    assert "not evidence: contended: other processes used 1.4 cores" in text
    assert "http" not in text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    assert "file:///tmp/r" in text  # dots link to their run's report


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_page_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    dom = _chromium(page.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 3 and dom.stdout.count('class="step"') == 2
    shot = tmp_path / "shot.png"
    assert _chromium(page.as_uri(), f"--screenshot={shot}").returncode == 0
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    red = sum(n for n, (r, g, b) in colours if r > 180 and g < 80 and b < 80)
    assert len(colours) > 50 and red > 100  # a real picture, with the red step marks
    shutil.copy(shot, Path(tempfile.gettempdir()) / "perfbench-history-shot.png")
