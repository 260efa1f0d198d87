"""`/docs`: the interactive API reference, Swagger UI 5 (which renders OpenAPI 3.1),
vendored in the package with its licence (`web/static/vendor/swagger-ui/VENDORED.md`), so
the page fetches nothing from elsewhere and works offline."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from conveyor.api.problems import problem_response
from conveyor.web import STATIC_DIR

ASSETS = "/docs/assets"
SWAGGER_UI_DIR = STATIC_DIR / "vendor" / "swagger-ui"
router = APIRouter(include_in_schema=False)

# The dashboard's policy: Swagger UI 5 needs no inline script or style either.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@router.get("/docs")
async def api_reference() -> Response:
    page = STATIC_DIR / "docs" / "index.html"
    if not page.is_file():
        return problem_response(404, "not-found", "Not found", "the API reference is not installed")
    return FileResponse(page, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def mount_api_docs(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(
        ASSETS, StaticFiles(directory=SWAGGER_UI_DIR, check_dir=False), name="api-docs-assets"
    )
