"""Failed logins per client address: too many, and the address is refused without a check.

A failure is a wrong admin password (``ThrottledModelBackend``) or an unknown key on the management
API (``GatewayKeyAuthentication``). After ``LOGIN_FAILURE_LIMIT`` failures from one address within
``LOGIN_FAILURE_WINDOW_SECONDS``, every further attempt from it is refused (the API answers 429, the
admin's login form an error) until the window ends, without the password or key being checked, so
guessing costs the attacker the window's length per ``LOGIN_FAILURE_LIMIT`` guesses. A successful
login resets nothing: an attacker who holds one valid account must not clear their own count.

The counts live in Django's cache, Redis in production (shared by every instance) and the file cache
embedded. The address is ``REMOTE_ADDR``: behind a proxy, uvicorn sets it from ``X-Forwarded-For``
for the proxies it trusts (``--forwarded-allow-ips``). When the cache cannot be reached the throttle
fails open: logins are checked as usual and a warning is logged, so an outage of Redis never locks
every operator out.
"""

from __future__ import annotations

import logging

import redis
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django_redis.exceptions import ConnectionInterrupted

from llm_gateway.conf import gateway_setting

logger = logging.getLogger(__name__)

CACHE_ERRORS = (ConnectionInterrupted, redis.RedisError, OSError)
THROTTLED_MESSAGE = "Too many failed logins from your address: try again in a few minutes."


def client_address(request: HttpRequest) -> str:
    """Return the address a request came from (uvicorn resolves trusted proxies' forwarding)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def _cache_key(address: str) -> str:
    return f"login-failures:{address}"


def login_throttled(*, address: str) -> bool:
    """Return True if ``address`` failed too often lately and must be refused without a check."""
    limit = gateway_setting("LOGIN_FAILURE_LIMIT")
    if limit <= 0:
        return False
    try:
        failures = cache.get(_cache_key(address), 0)
    except CACHE_ERRORS as error:
        logger.warning("Login throttle off: the cache cannot be read (%s).", error)
        return False
    return failures >= limit


def login_failure_record(*, address: str) -> None:
    """Count one failed login from ``address`` (the count expires with the window)."""
    if gateway_setting("LOGIN_FAILURE_LIMIT") <= 0:
        return
    key = _cache_key(address)
    try:
        if not cache.add(key, 1, timeout=gateway_setting("LOGIN_FAILURE_WINDOW_SECONDS")):
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr(): this failure opens a new window
                cache.add(key, 1, timeout=gateway_setting("LOGIN_FAILURE_WINDOW_SECONDS"))
    except CACHE_ERRORS as error:
        logger.warning("Login throttle off: a failed login from %s was not counted (%s).", address, error)


def login_failures_forget(*, address: str) -> None:
    """Forget the failed logins of ``address`` (an operator's reset)."""
    try:
        cache.delete(_cache_key(address))
    except CACHE_ERRORS as error:
        logger.warning("Login throttle: the failures of %s could not be forgotten (%s).", address, error)


class ThrottledModelBackend(ModelBackend):
    """Django's password check, refused outright for an address that failed too often.

    Raising PermissionDenied stops ``django.contrib.auth.authenticate()`` before any password is
    checked; the login form then shows its error, and ``templates/admin/login.html`` says why.
    """

    def authenticate(self, request: HttpRequest | None, username=None, password=None, **kwargs):
        if request is None:  # no client to count (manage.py, the test client's login())
            return super().authenticate(request, username=username, password=password, **kwargs)
        address = client_address(request)
        if login_throttled(address=address):
            request.login_throttled = True
            raise PermissionDenied(THROTTLED_MESSAGE)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failure_record(address=address)
        return user
