"""One place that turns errors into ``{detail: "..."}`` responses; never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from triage.errors import TriageError

log = logging.getLogger("triage.api")


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "the body"


def _sentence(error: dict) -> str:
    where = _field(tuple(error.get("loc", ())))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
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
    if kind in {"json_invalid", "model_attributes_type", "dict_type"}:
        return "the body must be a JSON object (UTF-8)"
    return f"{where}: {error.get('msg', 'invalid value')}"


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    sentences = list(dict.fromkeys(_sentence(e) for e in errors))
    fields = [{"field": _field(tuple(e.get("loc", ()))), "problem": _sentence(e)} for e in errors]
    return JSONResponse(status_code=422, content={"detail": "; ".join(sentences), "errors": fields})


async def _domain(request: Request, exc: TriageError) -> JSONResponse:
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.message})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(status_code=500, content={
        "detail": "the service hit an internal error; nothing was stored. Try again, "
                  "and tell the operators if it persists."})


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(TriageError, _domain)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
