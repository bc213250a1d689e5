"""Every piece of scenario and error text is HTML-escaped (autoescape on)."""

from __future__ import annotations

import re

from make_run import HOSTILE

from perfbench.report.page import build_report
from perfbench.results.rundir import RunDir


def test_hostile_text_is_escaped(fake_run: RunDir) -> None:
    html = build_report(fake_run.path).read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in html
    # the only <script> elements are the report's own table script
    assert len(re.findall(r"<script\b", html)) == 1


def test_escaped_in_every_place_text_appears(fake_run: RunDir) -> None:
    html = build_report(fake_run.path).read_text(encoding="utf-8")
    escaped = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # title, heading, doc, failed error (verdict + table), graph-break reason, env var
    assert html.count(escaped) >= 6
