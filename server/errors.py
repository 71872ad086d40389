"""The one error shape of the API: {"error": "<stable code>", "message": "<for people>"}."""
from __future__ import annotations

from aiohttp import web


def json_error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


class ApiError(Exception):
    """Raised by handlers and services; turned into a json_error by the error middleware."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> web.Response:
        return json_error(self.status, self.code, self.message, self.headers)
