"""One place that turns errors into ``{detail: "..."}`` responses; never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import MAX_TICKET_ID
from triage.errors import TriageError

log = logging.getLogger("triage.api")


_PAGES = Jinja2Templates(directory=Path(__file__).parent / "templates")
PAGE_TITLES = {404: "未找到", 409: "无法执行", 422: "请求有误", 503: "服务尚未就绪"}
NOT_UTF8 = ("the body is not UTF-8 text{declared}: send the JSON encoded as UTF-8 "
            "(content-type: application/json; charset=utf-8)")


def _is_page(request: Request) -> bool:
    """The staff pages (HTML): a person in a browser gets a page back, not JSON."""
    path = request.url.path
    return path == "/review" or path.startswith("/review/")


def _respond(request: Request, status: int, detail: str, **extra: Any) -> Response:
    """``{detail, ...}`` for the API; a staff page gets the sentence in a page with a way back."""
    if _is_page(request):
        return _PAGES.TemplateResponse(request, "error.html", {
            "status": status, "title": PAGE_TITLES.get(status, "出错了"), "detail": detail},
            status_code=status)
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


def _field(loc: tuple) -> str:
    if loc[:1] == ("body",) and len(loc) == 2 and isinstance(loc[1], int):
        return "body"  # a JSON syntax error: the number is a character offset, not an item
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def _sentence(error: dict) -> str:
    where = _field(tuple(error.get("loc", ())))
    where = "the body" if where == "body" else where
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if tuple(error.get("loc", ()))[:1] == ("path",):
        return _path_sentence(error)
    if kind == "json_invalid":
        at = error["loc"][1] if len(error.get("loc", ())) == 2 else None
        return (f"the body is not valid JSON ({ctx.get('error', 'syntax error')}"
                f"{f' at character {at}' if at is not None else ''}): "
                "send one JSON object, encoded as UTF-8")
    if kind == "value_error" and ctx.get("error"):
        said = str(ctx["error"])  # our validators' messages name the field themselves
        return said if said.startswith(where) else f"{where}: {said}"
    if kind == "missing":
        return f"{where} is required"
    if kind == "string_too_short":
        return f"{where} must not be empty"
    if kind == "string_too_long":
        return f"{where} is too long: at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"{where} has too many items: at most {ctx.get('max_length')}"
    if kind == "too_short":
        return f"{where} must hold at least {ctx.get('min_length')} item"
    if kind == "extra_forbidden":
        return f"{where} is not a field this endpoint accepts"
    if kind in {"model_attributes_type", "dict_type"}:
        return "the body must be a JSON object (UTF-8)"
    return f"{where}: {error.get('msg', 'invalid value')}"


def _path_sentence(error: dict) -> str:
    """A path part that names nothing: the only one taking numbers is a ticket id."""
    name = str(error["loc"][-1])
    value = error.get("input")
    if name == "ticket_id":
        return (f"there is no ticket {value}: ticket ids are whole numbers from 1 to "
                f"{MAX_TICKET_ID}")
    return f"there is no {name.replace('_', ' ')} {value}"


async def _validation(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    sentences = list(dict.fromkeys(_sentence(e) for e in errors))
    fields = [{"field": _field(tuple(e.get("loc", ()))), "problem": _sentence(e)} for e in errors]
    # an address that names no ticket is a missing resource, whatever else the body says
    missing = any(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors)
    return _respond(request, 404 if missing else 422, "; ".join(sentences), errors=fields)


async def _domain(request: Request, exc: TriageError) -> Response:
    return _respond(request, exc.status_code, exc.message)


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own refusals as they are, except a body it could not decode (not UTF-8)."""
    if isinstance(exc.__cause__, UnicodeDecodeError):
        charset = _declared_charset(request)
        detail = NOT_UTF8.format(declared=f" (it was sent as charset={charset})"
                                 if charset and charset not in {"utf-8", "utf8"} else "")
        return _respond(request, 422, detail, errors=[{"field": "body", "problem": detail}])
    return await http_exception_handler(request, exc)


def _declared_charset(request: Request) -> str | None:
    for part in request.headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower() or None
    return None


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(request, 500, "the service hit an internal error; nothing was stored. Try "
                                  "again, and tell the operators if it persists.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(TriageError, _domain)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
