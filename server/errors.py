"""The one error shape of the API: {"error": "<stable code>", "message": "<for people>"}.

aiohttp is imported only when a response is made: the inference worker and the fetch child use
Failure and need not load a web framework."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def json_error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    from aiohttp import web

    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


class ApiError(Exception):
    """Raised by handlers and services; turned into a json_error by the error middleware."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> web.Response:
        return json_error(self.status, self.code, self.message, self.headers)


@dataclass(frozen=True)
class Failure:
    """Why a check failed: one of the API's check error codes and a message for people. Crosses the
    inference worker's pipe and the fetch child's stdout, and becomes the check's `error`."""

    code: str
    message: str
