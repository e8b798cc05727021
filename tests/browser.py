"""Headless Chromium for the report-rendering tests: one set of flags, no network, no sync."""

from __future__ import annotations

from pathlib import Path


def chromium_command(profile: Path, *extra: str) -> list[str]:
    """`chromium` with headless, offline flags and a throwaway profile, then `extra`."""
    return [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *extra,
    ]
