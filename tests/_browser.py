"""What the real-browser tests share: Debian's chromium, its flags, the participant app, and the
marks that skip (with how to install it) where chromium is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required"]
APP = Path(__file__).resolve().parents[1] / "app" / "asgi.py"

MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=(
        "needs Debian's chromium at /usr/bin/chromium: `apt-get install -y chromium "
        "chromium-driver` (as root)")),
]
