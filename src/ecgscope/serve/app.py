"""The prediction service: FastAPI routes over :class:`ecgscope.serve.assess.Assessor`, safe by default.

- every route but ``/health`` and the viewer's files needs ``Authorization: Bearer <key>``; keys are held as
  SHA-256 digests and compared in constant time;
- an upload whose declared length is over the limit is refused (413) before its body is read, and one that
  streams past the limit is cut off at the limit;
- each upload lives in its own temporary folder, removed when the request ends, whatever happens;
- each request has a time limit (504 past it) and an id (``X-Request-ID``), which is all the log says of it
  beside the route, status and time: no file names, no reader messages, no patient data;
- CORS is off unless origins are given.
"""


import asyncio
import hashlib
import hmac
import logging
import shutil
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from ecgscope import __version__
from ecgscope.errors import EcgscopeError
from ecgscope.serve.assess import Assessor
from ecgscope.serve.batching import MicroBatcher
from ecgscope.serve.upload import EcgSamples, UploadError, record_from_file, record_from_samples, suffix_for

log = logging.getLogger("ecgscope.serve")
MAX_UPLOAD_BYTES = 16 * 2**20
TIME_LIMIT_S = 30.0
MIN_KEY_CHARS = 16
STATIC = files("ecgscope.serve") / "static"
ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "detail": {}, "request_id": {"type": ["string", "null"]}}}}}}
ERRORS = {401: {"description": "no valid API key", **ERROR}, 404: {"description": "no such model", **ERROR},
          413: {"description": "upload over the size limit", **ERROR},
          422: {"description": "not one readable ECG, or invalid parameters (with the reason)", **ERROR},
          504: {"description": "over the time limit", **ERROR}}
BODY = {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": EcgSamples.model_json_schema()}}}


def hash_key(key: str) -> str:
    """The digest a key is held as."""
    return hashlib.sha256(key.encode()).hexdigest()


def read_api_keys(path: str | Path | None = None, env: str | None = None) -> list[str]:
    """Keys from a file (one per line, blank lines and ``#`` comments ignored) and a comma-separated variable;
    a key shorter than :data:`MIN_KEY_CHARS` is refused."""
    keys = []
    if path is not None:
        keys += [line.strip() for line in Path(path).read_text().splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    if env:
        keys += [k.strip() for k in env.split(",") if k.strip()]
    short = [k for k in keys if len(k) < MIN_KEY_CHARS]
    if short:
        raise EcgscopeError(f"{len(short)} API key(s) shorter than {MIN_KEY_CHARS} characters; use long random keys "
                            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return keys


def _error(status: int, detail: str, request_id: str | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "request_id": request_id}, status_code=status,
                        headers={"X-Request-ID": request_id} if request_id else None)


class RequestGuard:
    """ASGI middleware: a request id on every request and response, the declared upload size checked before
    anything reads the body, and one log line per request (id, method, route, status, milliseconds)."""

    def __init__(self, app, max_upload_bytes: int):
        self.app, self.max_upload_bytes = app, max_upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started, status = time.perf_counter(), [0]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            too_big = declared is not None and int(declared) > self.max_upload_bytes
        except ValueError:
            too_big = False
        if too_big:
            await _error(413, f"upload of {int(declared):,} bytes is over the {self.max_upload_bytes:,}-byte limit",
                         request_id)(scope, receive, send_with_id)
        else:
            await self.app(scope, receive, send_with_id)
        log.info("request %s %s %s %d %.1f ms", request_id, scope["method"], scope["path"], status[0],
                 1000 * (time.perf_counter() - started))


def create_app(model_dirs: list[str | Path], *, api_keys: list[str] | None, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               time_limit_s: float = TIME_LIMIT_S, cors_origins: list[str] | None = None, runtime: str = "auto",
               max_batch: int = 32, temp_root: str | Path | None = None) -> FastAPI:
    """The service for the model directories given (each loaded once, now). ``api_keys`` None means no
    authentication (the CLI allows that on loopback only)."""
    assessors: dict[str, Assessor] = {}
    for path in model_dirs:
        assessor = Assessor(path, runtime=runtime)
        if assessor.name in assessors:
            raise EcgscopeError(f"two models are named {assessor.name!r}; give them directories of different names")
        assessors[assessor.name] = assessor
    batchers = {name: MicroBatcher(a.infer, max_batch) for name, a in assessors.items()}
    digests = [hash_key(k) for k in api_keys] if api_keys is not None else None
    bearer = HTTPBearer(auto_error=False, description="an API key from --api-keys or ECGSCOPE_API_KEYS")

    def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if digests is None:
            return
        presented = hash_key(credentials.credentials) if credentials is not None else ""
        matched = False
        for digest in digests:  # every key compared, so the time taken does not say which one is close
            matched |= hmac.compare_digest(presented, digest)
        if not matched:
            raise HTTPException(401, "a valid API key is needed: Authorization: Bearer <key>",
                                headers={"WWW-Authenticate": "Bearer"})

    @asynccontextmanager
    async def lifespan(_app):
        yield
        for batcher in batchers.values():
            await batcher.close()

    app = FastAPI(title="ecgscope", version=__version__, lifespan=lifespan,
                  description="Cardiac structure and function from the 12-lead ECG: predictions with intervals, "
                              "calibrated probabilities, signal checks, explanations. Research use; an ECG model "
                              "does not replace imaging.")
    app.state.assessors, app.state.batchers = assessors, batchers
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])

    def pick(model: str | None) -> Assessor:
        if model is None:
            return next(iter(assessors.values()))
        if model not in assessors:
            raise HTTPException(404, f"no model named {model!r}; this service has {', '.join(assessors)}")
        return assessors[model]

    async def receive_upload(request: Request, folder: Path, fmt, fs, units, leads):
        """Stream the body into ``folder`` (413 past the limit) and make it one record (422 when it is not)."""
        if not 0 < (fs or 1) <= 20000:
            raise HTTPException(422, "fs must be a sampling rate in Hz, above 0 and at most 20000")
        head, size = b"", 0
        upload = folder / "upload"
        with upload.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_upload_bytes:
                    raise HTTPException(413, f"upload is over the {max_upload_bytes:,}-byte limit")
                if len(head) < 512:
                    head += chunk[:512]
                out.write(chunk)
        if not size:
            raise HTTPException(422, "the request body is empty: send the ECG file, or its samples as JSON")
        if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
            try:
                samples = EcgSamples.model_validate_json(upload.read_bytes())
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3])
                raise HTTPException(422, f"the JSON is not an ECG: {problems}") from exc
            return await asyncio.to_thread(record_from_samples, samples)
        named = upload.rename(folder / f"ecg{suffix_for(head)}")
        names = tuple(x.strip() for x in leads.split(",")) if leads else None
        return await asyncio.to_thread(record_from_file, named, format=fmt, fs=fs, units=units, leads=names,
                                       limit_bytes=max_upload_bytes)

    async def within_limit(request: Request, work):
        """Run ``work(folder)`` in a fresh temporary folder under the time limit; map errors to statuses."""
        folder = Path(tempfile.mkdtemp(prefix="ecgscope-request-", dir=temp_root))
        request_id = request.scope.get("state", {}).get("request_id")
        try:
            return await asyncio.wait_for(work(folder), time_limit_s)
        except TimeoutError:
            return _error(504, f"the request took longer than its time limit ({time_limit_s:g} s)", request_id)
        except EcgscopeError as exc:  # UploadError and any other reason the ECG cannot be read
            return _error(422, str(exc), request_id)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    Format = Annotated[str | None, Query(description="the file's format when it cannot be told from its bytes: "
                                                     "muse, hl7aecg, philips, dicom, wfdb, code15, array")]
    Fs = Annotated[float | None, Query(description="sampling rate (Hz) of a CSV or NumPy upload", gt=0)]
    Units = Annotated[str | None, Query(description="units of a CSV or NumPy upload: mV, uV or V")]
    Leads = Annotated[str | None, Query(description="lead order of a NumPy upload, comma-separated")]

    @app.get("/health", tags=["service"])
    async def health() -> dict:
        """Alive, and which models are loaded (no key needed)."""
        return {"status": "ok", "version": __version__, "models": list(assessors),
                "batches": {n: {"batches": b.batches, "ecgs": b.items} for n, b in batchers.items()}}

    @app.get("/v1/models", tags=["models"], dependencies=[Depends(authorised)], responses={401: ERRORS[401]})
    async def models() -> list[dict]:
        """Each model's identity, input contract, outputs, thresholds and TRIPOD+AI model card."""
        return [a.describe() for a in assessors.values()]

    @app.post("/v1/predict", tags=["predict"], dependencies=[Depends(authorised)],
              openapi_extra={"requestBody": BODY}, responses=ERRORS)
    async def predict(request: Request, model: str | None = None, format: Format = None, fs: Fs = None,
                      units: Units = None, leads: Leads = None, include_signal: bool = False):
        """One ECG in (a file as the body, or JSON samples): each target's value and interval, each phenotype's
        probability and flag, the signal checks, and ``status``: ``result`` or ``cannot_assess`` with reasons."""
        started = time.perf_counter()
        assessor = pick(model)

        async def work(folder: Path):
            ecg = await receive_upload(request, folder, format, fs, units, leads)
            prepared = await asyncio.to_thread(assessor.prepare, ecg)
            inferred = await batchers[assessor.name].submit(prepared.x) if prepared.x is not None else None
            answer = assessor.answer(prepared, inferred)
            if include_signal and prepared.display is not None:
                answer["signal"] = _display_signal(prepared.display)
            answer["elapsed_ms"] = round(1000 * (time.perf_counter() - started), 2)
            answer["request_id"] = request.scope.get("state", {}).get("request_id")
            return answer

        return await within_limit(request, work)

    @app.post("/v1/explain", tags=["explain"], dependencies=[Depends(authorised)],
              openapi_extra={"requestBody": BODY}, responses=ERRORS)
    async def explain(request: Request, target: str, model: str | None = None,
                      method: Literal["integrated_gradients", "occlusion"] = "integrated_gradients",
                      format: Format = None, fs: Fs = None, units: Units = None, leads: Leads = None):
        """Why the model says what it says for ``target``: the attribution of each sample of each lead (at the
        model's rate), each lead's share, and each 0.5 s window's share."""
        from ecgscope.explain import attribute

        started = time.perf_counter()
        assessor = pick(model)
        if target not in assessor.loaded.spec.names:
            raise HTTPException(422, f"{assessor.name} has no target {target!r}; it has "
                                     f"{', '.join(assessor.loaded.spec.names)}")

        async def work(folder: Path):
            ecg = await receive_upload(request, folder, format, fs, units, leads)
            prepared = await asyncio.to_thread(assessor.prepare, ecg)
            if prepared.x is None:
                raise UploadError("; ".join(r for r in prepared.reasons if r.startswith("outside")) or
                                  "the ECG cannot be put into the model's input")
            pipeline = assessor.loaded.pipeline
            found = await asyncio.to_thread(attribute, assessor.loaded.model, assessor.loaded.spec, prepared.x, target,
                                            pipeline.leads, pipeline.fs, method)
            segments = found.segment_importance(0.5)
            return {"target": target, "method": method, "model": assessor.identity, "fs": found.fs,
                    "leads": list(found.leads), "head_output": found.output,
                    "lead_importance": {k: round(float(v), 5) for k, v in found.lead_importance().items()},
                    "segment_seconds": 0.5,
                    "segment_importance": {lead: [round(float(v), 5) for v in row]
                                           for lead, row in zip(segments.index, segments.to_numpy(), strict=True)},
                    "attribution": np.round(found.values, 6).tolist(),
                    "status": "result" if not prepared.reasons else "cannot_assess", "reasons": prepared.reasons,
                    "elapsed_ms": round(1000 * (time.perf_counter() - started), 2)}

        return await within_limit(request, work)

    @app.get("/", include_in_schema=False)
    async def viewer():
        return FileResponse(str(STATIC / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(RequestGuard, max_upload_bytes=max_upload_bytes)  # outermost: sees every request first
    return app


def _display_signal(ecg, max_fs: float = 500.0) -> dict:
    """The 12 leads for drawing (mV, at most ``max_fs`` Hz, rounded to 1 uV)."""
    from ecgscope.signal import resample

    fs = min(float(ecg.fs), max_fs)
    signal = resample(ecg.signal, ecg.fs, fs) if fs != ecg.fs else ecg.signal
    return {"fs": fs, "leads": list(ecg.leads), "units": "mV", "samples": np.round(signal, 3).tolist()}
