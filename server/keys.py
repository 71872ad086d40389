"""Typed application state keys (aiohttp web.AppKey), shared by app.py and api.py."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .auth import PairedOrigin, Pairing, TokenStore
from .config import Config
from .fetch import FetcherMonitor
from .history import History
from .jobs import JobService
from .media import MediaStore
from .personal import PersonalCalibration
from .worker import InferenceWorker

CONFIG = web.AppKey("config", Config)
TOKENS = web.AppKey("tokens", TokenStore)
PAIRING = web.AppKey("pairing", Pairing)
PAIRED_ORIGIN = web.AppKey("paired_origin", PairedOrigin)
STORE = web.AppKey("store", MediaStore)
PLAIN_DIR = web.AppKey("plain_dir", Path)  # where the worker may decrypt (config.plain_dir, or this run's own)
WORKER = web.AppKey("worker", InferenceWorker)
JOBS = web.AppKey("jobs", JobService)
FETCHER = web.AppKey("fetcher", FetcherMonitor)
HISTORY = web.AppKey("history", History)  # checks and the user's answers (server/history.py)
PERSONAL = web.AppKey("personal", PersonalCalibration)  # the user's own cuts, if any (server/personal.py)
