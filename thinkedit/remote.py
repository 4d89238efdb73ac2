"""What every remote backend shares: timeouts, bounded retries, cancellation in flight, errors without secrets.

A backend describes one attempt as a coroutine factory and calls `run(...)`. The attempt runs on its own
event loop so that Stop can cancel it mid-request: cancelling the task closes its connection at once,
which a blocking client cannot do from another thread.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import itertools
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx2
from PIL import Image

from .config import Settings
from .errors import BadInput, Cancelled, ThinkEditError
from .images import png_bytes

if TYPE_CHECKING:
    from huggingface_hub import AsyncInferenceClient

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0  # a server asking for a longer pause than this gets a clear error instead
HEARTBEAT_SECONDS = 0.5  # how often an idle request asks the caller whether Stop was pressed


@dataclass(frozen=True)
class Policy:
    """Timeouts, retries and bounds for one backend, from `Settings`, and whether its servers' words may be shown."""

    connect: float
    read: float
    retries: int
    backoff: float
    quote_server: bool = True  # False for an endpoint a caller named: its answers may be from anywhere
    deadline: float = math.inf  # seconds one call may take in all, retries included: no trickle of bytes extends it
    deadline_setting: str = ""  # the THINKEDIT_* variable that sets `deadline`, named when it passes
    answer_mb: float = Settings.remote_answer_mb  # the largest answer read, in MB (THINKEDIT_REMOTE_ANSWER_MB)

    @classmethod
    def from_settings(cls, settings: Settings, role: str) -> Policy:
        """An editor waits `edit_timeout` for each read and for the whole call (an edit may take minutes); a thinker
        or a judge waits `request_timeout` for each read and `thinker_timeout` for the whole call."""
        editor = role == "editor"
        deadline = "edit_timeout" if editor else "thinker_timeout"
        return cls(
            settings.connect_timeout,
            settings.edit_timeout if editor else settings.request_timeout,
            max(0, settings.request_retries),
            max(0.0, settings.retry_backoff),
            not settings.role(role).caller_named_url,
            getattr(settings, deadline),
            f"THINKEDIT_{deadline.upper()}",
            settings.remote_answer_mb,
        )

    def timeout(self) -> httpx2.Timeout:
        return httpx2.Timeout(self.read, connect=self.connect)


class RemoteFailure(Exception):
    """One failed attempt in words a person can act on; `retry` says whether another attempt may help."""

    def __init__(self, happened: str, *, retry: bool, wait: float | None = None, host: str | None = None):
        super().__init__(happened)
        self.happened, self.retry, self.wait, self.host = happened, retry, wait, host


def credential(settings: Settings, role: str, *environment: str) -> str | None:
    """The key for the `role` backend's endpoint: the caller's own when they gave one; else the server's (from
    the first set of the `environment` variables), but only for the endpoint the server itself configured —
    an endpoint a caller named (the web page's URL box, the API) never gets the server's key."""
    chosen = settings.role(role)
    if chosen.caller_key or chosen.caller_named_url:
        return chosen.caller_key or None
    return next((os.environ[name] for name in environment if os.environ.get(name)), None)


NO_KEY = "EMPTY"  # what goes to an endpoint that takes no key (vLLM's convention), never a secret
HF_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")  # huggingface_hub's own, in its order


def hub_token(settings: Settings, role: str) -> str | None:
    """huggingface_hub's `token=` for the `role` endpoint: the key `credential` allows; for an endpoint a caller
    named without a key of their own, `NO_KEY` (given None, huggingface_hub would send HF_TOKEN or its stored
    login); else None (huggingface_hub's own login, for the server's endpoints)."""
    key = credential(settings, role, *HF_TOKEN_VARIABLES)
    return key or (NO_KEY if settings.role(role).caller_named_url else None)


def hf_token() -> str | None:
    """The server's own Hugging Face token, for what the server itself fetches from the hub (its weights)."""
    return next((os.environ[name] for name in HF_TOKEN_VARIABLES if os.environ.get(name)), None)


def check_url(url: str, flag: str) -> str:
    """A base URL without its trailing slash; `BadInput` unless it is http(s) with a host."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"{flag} must be an http:// or https:// URL with a host, not '{url}'.")
    return url


def host_of(url: str) -> str:
    """host:port of a URL — never its user:password part."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or url)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def data_url(image: Image.Image, kind: str = "PNG") -> str:
    """The image as a data URL: PNG, or JPEG at Pillow's default quality (what VIEScore sends its judge)."""
    if kind == "JPEG":
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG")
        data = buffer.getvalue()
    else:
        data = png_bytes(image)
    return f"data:image/{kind.lower()};base64," + base64.b64encode(data).decode("ascii")


# -- bounding what a server sends ----------------------------------------------------------------------


def http_client(policy: Policy) -> httpx2.AsyncClient:
    """An httpx2 client for calls under `policy`: its timeouts, and its answers bounded (`bound_answers`)."""
    return bound_answers(httpx2.AsyncClient(timeout=policy.timeout()), policy)


def hub_client(policy: Policy, **options) -> AsyncInferenceClient:
    """huggingface_hub's `AsyncInferenceClient` (`options` are its own), its answers bounded (`bound_answers`)."""
    from huggingface_hub import AsyncInferenceClient, get_async_session

    client = AsyncInferenceClient(timeout=policy.read, **options)
    # It opens its httpx2 session on first use and takes none as an argument: it gets its own default session
    # (get_async_session: offline mode, request ids) with the bounds added, closed with it.
    session = bound_answers(get_async_session(), policy)
    client._async_client = session
    client.exit_stack.push_async_callback(session.aclose)
    return client


def bound_answers(client: httpx2.AsyncClient, policy: Policy) -> httpx2.AsyncClient:
    """`client`, asking for plain (uncompressed) answers and reading at most `policy.answer_mb` of each: a larger
    answer, or one compressed anyway (a small gzip can unpack to gigabytes), raises `RemoteFailure` while it is
    read, and what was read of it is dropped."""
    limit = int(policy.answer_mb * 2**20)

    async def ask_plain(request: httpx2.Request) -> None:
        request.headers["Accept-Encoding"] = "identity"

    async def bound(response: httpx2.Response) -> None:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        declared = response.headers.get("content-length", "")
        failure = None
        if encoding not in ("", "identity"):
            failure = RemoteFailure(
                f"sent a compressed answer ({shorten(encoding, 20)}) when asked for a plain one; it was not unpacked",
                retry=False,
            )
        elif declared.isdigit() and int(declared) > limit:
            failure = too_large(policy)
        if failure is not None:
            await response.aclose()
            raise failure
        response.stream = _BoundedStream(response.stream, limit, policy)

    hooks = client.event_hooks
    client.event_hooks = {"request": [*hooks["request"], ask_plain], "response": [bound, *hooks["response"]]}
    return client


def too_large(policy: Policy) -> RemoteFailure:
    return RemoteFailure(
        f"sent an answer larger than {policy.answer_mb:g} MB (THINKEDIT_REMOTE_ANSWER_MB); it was not read further",
        retry=False,
    )


class _BoundedStream(httpx2.AsyncByteStream):
    """An answer's body that raises `too_large` once more than `limit` bytes have come."""

    def __init__(self, stream: httpx2.AsyncByteStream, limit: int, policy: Policy) -> None:
        self.stream, self.limit, self.policy = stream, limit, policy

    async def __aiter__(self):
        received = 0
        async for chunk in self.stream:
            received += len(chunk)
            if received > self.limit:
                raise too_large(self.policy)
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


# -- running one remote call ---------------------------------------------------------------------------


def run(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: Policy,
    service: str,
    host: str,
    secrets: Iterable[str | None] = (),
    probe: Callable[[], Any] | None = None,
    credentials: str | None = None,
) -> T:
    """`await attempt()` with bounded retries and backoff; raise `ThinkEditError` naming the host when it fails.

    The whole call, retries and pauses included, ends after `policy.deadline` seconds however the server trickles.
    `probe()` is called every `HEARTBEAT_SECONDS` while a request is in flight or a retry is waiting;
    when it raises (the loop's callbacks raise `Cancelled` after Stop), the request is cancelled and its
    connection closed. `credentials` names where the key comes from, for 401/403 messages.
    """
    secrets = tuple(secrets)
    work = _with_retries(attempt, policy, service, host, secrets, credentials)
    late = (
        f"{service} at {host} did not finish within {policy.deadline:g} s ({policy.deadline_setting}); "
        "the request was stopped."
    )
    return asyncio.run(_supervise(work, probe, policy.deadline, late))


async def _supervise(work: Awaitable[T], probe: Callable[[], Any] | None, deadline: float, late: str) -> T:
    task = asyncio.ensure_future(work)
    ends = asyncio.get_running_loop().time() + deadline
    try:
        while True:
            left = ends - asyncio.get_running_loop().time()
            done, _ = await asyncio.wait({task}, timeout=max(0.0, min(HEARTBEAT_SECONDS, left)))
            if done:
                return task.result()
            if left <= HEARTBEAT_SECONDS:
                raise ThinkEditError(late)
            if probe is not None:
                probe()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _with_retries(attempt, policy: Policy, service: str, host: str, secrets: tuple, credentials: str | None):
    tries = policy.retries + 1
    for number in itertools.count(1):
        try:
            return await attempt()
        except (ThinkEditError, Cancelled, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure is described, then retried or reported
            failure = failure_of(exc, policy, credentials)
        where = failure.host or host
        happened = redact(failure.happened, secrets)
        too_long = failure.wait is not None and failure.wait > MAX_RETRY_AFTER
        if not failure.retry or number == tries or too_long:
            after = f" (after {number} attempts)" if number > 1 else ""
            asked = f"; it asked to wait {failure.wait:g} s, longer than {MAX_RETRY_AFTER:g} s" if too_long else ""
            raise ThinkEditError(f"{service} at {where} {happened}{after}{asked}.") from None
        pause = failure.wait if failure.wait is not None else policy.backoff * 2 ** (number - 1)
        logger.warning(
            "%s at %s %s; retrying in %.1f s (attempt %d of %d)", service, where, happened, pause, number + 1, tries
        )
        await asyncio.sleep(pause)


def failure_of(exc: BaseException, policy: Policy, credentials: str | None = None) -> RemoteFailure:
    """What went wrong with one attempt, whichever client (openai, huggingface_hub, httpx2) raised it."""
    chain = _chain(exc)
    bounded = next((e for e in chain if isinstance(e, RemoteFailure)), None)  # openai wraps what a hook raised
    if bounded is not None:
        return bounded
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        detail = _detail(exc, response) if policy.quote_server else ""
        return status_failure(status, response.headers, detail, credentials)
    if any(isinstance(e, httpx2.TimeoutException) or type(e).__name__ == "InferenceTimeoutError" for e in chain):
        if any(isinstance(e, httpx2.ConnectTimeout) for e in chain):
            return RemoteFailure(f"could not be reached within {policy.connect:g} s (connect timeout)", retry=True)
        # not retried: the server may still be working on it, and another wait would likely end the same way
        return RemoteFailure(f"did not answer within {policy.read:g} s (read timeout)", retry=False)
    if any(isinstance(e, httpx2.ConnectError) for e in chain):
        return RemoteFailure(
            "could not be reached (connection refused or unknown host: is the server running and the URL right?)",
            retry=True,
        )
    if any(isinstance(e, httpx2.TransportError) for e in chain):
        return RemoteFailure(f"dropped the connection ({_text(chain[-1])})", retry=True)
    if type(exc).__name__ == "OfflineModeIsEnabled":
        return RemoteFailure(
            "cannot be called while HF_HUB_OFFLINE=1 is set (huggingface_hub refuses every URL "
            "in offline mode); unset it, or use the openai thinker for a local server",
            retry=False,
        )
    return RemoteFailure(f"failed: {_text(exc)}", retry=False)


def status_failure(status: int, headers, detail: str = "", credentials: str | None = None) -> RemoteFailure:
    said = f": {detail}" if detail else ""
    if status == 429:
        return RemoteFailure(
            f"kept answering 429 Too Many Requests{said}; wait a little and try again",
            retry=True,
            wait=retry_after(headers),
        )
    if status in (401, 403):
        where = f"; check {credentials}" if credentials else ""
        return RemoteFailure(f"refused the credentials (HTTP {status}{said}){where}", retry=False)
    if status in RETRY_STATUSES:
        return RemoteFailure(f"answered HTTP {status}{said}", retry=True, wait=retry_after(headers))
    return RemoteFailure(f"refused the request (HTTP {status}{said})", retry=False)


def retry_after(headers) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), or None."""
    value = (headers or {}).get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _detail(exc: BaseException, response) -> str:
    """The server's own short explanation, if it gave one."""
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - unread streams, HTML pages, empty bodies
        body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") or body.get("detail") or body.get("message")
        if isinstance(inner, dict):
            inner = inner.get("message")
        if inner:
            return shorten(str(inner))
    try:
        return shorten(response.text)
    except Exception:  # noqa: BLE001
        return ""


def _chain(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        chain.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return chain


def _text(exc: BaseException) -> str:
    return shorten(str(exc)) or type(exc).__name__


def shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
