"""Serves the dashboard: `/` is its page, `/static/…` its assets (all shipped in the
package; nothing is fetched from elsewhere at run time)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from conveyor.api.problems import problem_response
from conveyor.web import STATIC_DIR

router = APIRouter(include_in_schema=False)

# The page may only load what it ships with, and may not be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@router.get("/")
async def dashboard() -> Response:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        return problem_response(404, "not-found", "Not found", "the dashboard is not installed")
    return FileResponse(index, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def mount_dashboard(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
