"""The access-control middlewares, outermost first: errors -> Host -> CORS -> token -> rate limit."""
from __future__ import annotations

import asyncio
import hashlib
import logging

from aiohttp import web

from .auth import PairedOrigin, Pairing, RateLimiter, TokenStore, bearer_token, is_extension_origin
from .errors import ApiError, json_error

log = logging.getLogger(__name__)

HOSTS = ("localhost", "127.0.0.1", "[::1]")
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/pair", "/v1/openapi.json", "/pair"})
CORS_HEADERS = web.RequestKey("cors_headers", dict)
# the verified token's hash (never the token): the rate limit's key for this request
TOKEN_KEY = web.RequestKey("token_key", str)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as e:
        return e.response()
    except web.HTTPNotFound:
        return json_error(404, "not_found", "No such endpoint.")
    except web.HTTPMethodNotAllowed as e:
        return json_error(405, "method_not_allowed", "Method not allowed.", {"Allow": ", ".join(sorted(e.allowed_methods))})
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, "too_large", "Request too large.")
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:  # a bug must not leak a traceback page; the log has it
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal", "Internal server error.")


def allowed_hosts(port: int) -> frozenset[str]:
    hosts = {f"{h}:{port}" for h in HOSTS}
    if port == 443:
        hosts |= set(HOSTS)
    return frozenset(hosts)


@web.middleware
async def host_middleware(request: web.Request, handler):
    """Host must name this machine's loopback and the port the request arrived on: a rebound DNS
    name never matches."""
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    if (request.headers.get("Host") or "").lower() not in allowed_hosts(sock[1] if sock else -1):
        return json_error(403, "forbidden_host", "Host header must be localhost, 127.0.0.1 or [::1] with this server's port.")
    return await handler(request)


def origin_allowed(origin: str, path: str, extra: tuple[str, ...], paired: PairedOrigin, pairing: Pairing) -> bool:
    """An --allow-origin origin; an extension's, while none has paired; then the paired extension's
    only, or another's asking to pair while a pairing code is out (the code decides)."""
    if origin in extra:
        return True
    if not is_extension_origin(origin):
        return False
    recorded = paired.get()
    return recorded is None or origin == recorded or (path == "/v1/pair" and pairing.active)


def cors_middleware(extra_origins: tuple[str, ...], paired: PairedOrigin, pairing: Pairing):
    @web.middleware
    async def cors(request: web.Request, handler):
        origin = request.headers.get("Origin")
        if origin is None:
            return await handler(request)
        if not origin_allowed(origin, request.path, extra_origins, paired, pairing):
            return json_error(403, "forbidden_origin", "Requests from this origin are not allowed.")
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            headers.update({
                "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            })
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                headers["Access-Control-Allow-Private-Network"] = "true"
            return web.Response(status=204, headers=headers)
        request[CORS_HEADERS] = headers  # added to whatever response goes out, streams included
        return await handler(request)

    return cors


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare, so errors raised past the middlewares and streamed responses get them too:
    CORS headers for an allowed origin; results are nobody's cache's business."""
    headers = request.get(CORS_HEADERS)
    if headers:
        response.headers.update(headers)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"


def token_middleware(tokens: TokenStore, paired: PairedOrigin, failures: RateLimiter):
    """The bearer token, parsed once (bearer_token: every spelling of it is the same token).
    Wrong tokens are counted per client address (`failures`); a client over that limit is refused
    with 429 before its token is even compared, right or wrong, until the limit refills: guessing
    costs time. A request without any Authorization header is no guess and is not counted."""

    @web.middleware
    async def check_token(request: web.Request, handler):
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization")
        client = request.remote or "-"
        if header is not None and (wait := failures.wait(client)):
            return json_error(429, "rate_limited", "Too many wrong tokens from this client; wait before trying again.",
                              {"Retry-After": str(wait)})
        presented = bearer_token(header) if header is not None else None
        if presented is None or not tokens.verify(presented):
            if header is not None:
                failures.take(client)
            return json_error(401, "unauthorized", "Missing or wrong token. Pair the extension with the server.",
                              {"WWW-Authenticate": "Bearer"})
        request[TOKEN_KEY] = hashlib.sha256(presented.encode()).hexdigest()[:16]
        origin = request.headers.get("Origin")
        if origin and is_extension_origin(origin) and paired.get() is None:
            paired.set(origin)  # paired before origins were recorded: the extension that holds the token
        return await handler(request)

    return check_token


def rate_limit_middleware(limiter: RateLimiter):
    @web.middleware
    async def rate_limit(request: web.Request, handler):
        key = request.get(TOKEN_KEY)
        if key:  # set by the token middleware: the token itself, however its header was spelled
            wait = limiter.take(key)
            if wait:
                return json_error(429, "rate_limited", "Too many requests; slow down.", {"Retry-After": str(wait)})
        return await handler(request)

    return rate_limit
