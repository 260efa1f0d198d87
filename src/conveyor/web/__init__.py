"""The dashboard: static files (HTML, CSS, JavaScript modules), no build step, no CDN."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
