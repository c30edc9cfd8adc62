"""The HTML report in a real headless Chromium: it renders, every image loads, no console errors.

Slow (``make test-slow``, whose ``browser`` target installs Debian's chromium); skipped when no
chromium is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lensrl.report import build_report

pytestmark = pytest.mark.slow

# Appended to a copy of the report: after load, write what the page looks like into the DOM,
# which --dump-dom then prints. Errors are caught both here and from Chromium's console log.
PROBE = """
<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    title: document.title,
    images: imgs.map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})),
    tables: document.querySelectorAll("table").length,
    height: document.body.scrollHeight,
    errors: window.__errors,
  });
  document.body.appendChild(out);
});
</script>
"""

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium: run `make browser` (apt-get install -y chromium)")


def test_report_renders_in_chromium(runs: list[Path], tmp_path: Path) -> None:
    browser = chromium()
    index = build_report(runs, tmp_path / "report")
    # The probe goes in before </head>, so its load listener is registered before load fires.
    html = index.read_text()
    probe_page = index.with_name("probe.html")
    probe_page.write_text(html.replace("</head>", PROBE + "</head>", 1))
    proc = subprocess.run(
        [
            browser,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            probe_page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"page did not finish loading:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["title"] == "LENS / GRPO run report"
    assert len(probe["images"]) == 3
    assert all(i["complete"] and i["w"] > 300 and i["h"] > 200 for i in probe["images"])
    assert probe["tables"] >= 4 and probe["height"] > 1000
    assert probe["errors"] == []
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], "\n".join(console)

    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
