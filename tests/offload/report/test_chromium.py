"""The report in a real browser: headless Chromium loads the pages without console messages
or failed resources, draws the plots with a size, runs the sorting script, takes a
screenshot. Skips only when /usr/bin/chromium is missing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium not installed (scripts/setup.sh "
                                       "installs the Debian package chromium)")
TIMEOUT_S = 120


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    """Headless Chromium on ``url``, console messages logged to stderr."""
    args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr",
            "--v=1", "--window-size=1280,2000", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)


def console_messages(stderr: str) -> list[str]:
    """Lines Chromium logs for the page's console (INFO:CONSOLE, ...), and uncaught errors."""
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line]


def attrs(dom: str, tag: str) -> dict[str, str]:
    """The attributes of the first ``<tag ...>`` in the dumped DOM."""
    m = re.search(rf"<{tag}(\s[^>]*)?>", dom)
    assert m, f"no <{tag}> in the DOM"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1) or ""))


def load_page(path: Path, tmp_path: Path) -> tuple[str, dict[str, str], dict[str, str]]:
    proc = chromium(path.as_uri(), tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_messages(proc.stderr) == []
    dom = proc.stdout
    return dom, attrs(dom, "html"), attrs(dom, "body")


def test_index_loads_and_shows_its_plot(small_report, tmp_path):
    """index.html: no console message, no failed resource, the overview plot drawn with a
    size, the sorting script ran over its tables."""
    out, doc = small_report
    dom, html, body = load_page(out / "index.html", tmp_path)
    assert html.get("data-errors") == "0", html.get("data-error-list")
    assert body.get("data-plots") == "1/1"
    assert int(body["data-sortable-ready"]) >= 2
    assert dom.count('<span class="v ') >= len(doc["comparison"])


def test_program_page_shows_plots_and_cfg(small_report, tmp_path):
    """A program page: the three plots drawn, the visible CFG (inline SVG) has a size."""
    out, doc = small_report
    fw = next(p for p in doc["programs"] if p["program"] == "xdp_firewall")
    dom, html, body = load_page(out / "programs" / f"{fw['id']}.html", tmp_path)
    assert html.get("data-errors") == "0", html.get("data-error-list")
    assert body.get("data-plots") == "3/3"
    sized, total = (int(x) for x in body["data-svgs"].split("/"))
    assert total >= 1 and sized >= 1
    assert 'id="L1"' in dom


def test_a_missing_plot_is_noticed(small_report, tmp_path):
    """The self-check works: a page whose plot file is gone reports the failed load."""
    out, _ = small_report
    page = tmp_path / "copy" / "index.html"
    page.parent.mkdir()
    page.write_text((out / "index.html").read_text())  # plots/ not copied
    proc = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    html = attrs(proc.stdout, "html")
    assert html.get("data-errors") == "1" and "overview.svg" in html["data-error-list"]
    assert attrs(proc.stdout, "body").get("data-plots") == "0/1"


def test_screenshot(small_report, tmp_path):
    """A screenshot of the index: a PNG of the window size that is not blank."""
    from PIL import Image

    out, _ = small_report
    shot = tmp_path / "index.png"
    proc = chromium((out / "index.html").as_uri(), tmp_path / "profile",
                    f"--screenshot={shot}")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    assert console_messages(proc.stderr) == []
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50
