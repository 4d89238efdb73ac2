"""EditThinker's editing-server protocol: `POST {url}/edit`, `GET {url}/health`, several servers round-robin.

Request  {image: base64 PNG, prompt, num_inference_step, guidance_scale, width, height, seed}
Answer   {success, edited_image: base64 PNG, error}

The reference client sends `num_inference_step` while the reference servers read `num_inference_steps`
(and silently fall back to their default), so both spellings go out. The reference servers also default
`enhance_prompt` to true — a server-side prompt rewrite by yet another model — so it is turned off: the
thinker refines prompts here. `python -m thinkedit serve-editor` speaks the same protocol.

`--editor-url` may list several servers, comma-separated. Each edit goes to the next healthy one; a
server that fails is skipped for `DOWN_SECONDS`, then asked for /health again before it is used.
URLs come only from settings, never from a request.
"""

from __future__ import annotations

import base64
import threading
import time

import httpx2
from PIL import Image

from .. import remote
from ..backend import BackendSpec, OnStep
from ..config import Settings
from ..errors import BadInput
from ..images import base64_bytes, load_image, png_bytes

DOWN_SECONDS = 30.0
SERVICE = "The editing server"


class HTTPEditor:
    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.policy = remote.Policy.from_settings(settings, "editor")
        urls = [u for u in (settings.role("editor").url or "").split(",") if u.strip()]
        if not urls:
            raise BadInput(
                "The http editor needs an editing server: set --editor-url (THINKEDIT_EDITOR_URL), "
                "e.g. http://gpu-box:8005 — several may be given, comma-separated."
            )
        self.urls = [remote.check_url(url, "--editor-url") for url in urls]
        self.model = ", ".join(remote.host_of(url) for url in self.urls)
        self._lock = threading.Lock()
        self._turn = 0  # round-robin position
        self._down_until: dict[str, float] = {}
        self._checked: set[str] = set()  # answered /health and has not failed since

    def edit(
        self,
        image: Image.Image,
        prompt: str,
        *,
        seed: int,
        steps: int | None = None,
        guidance: float | None = None,
        on_step: OnStep | None = None,
    ) -> Image.Image:
        payload = {
            "image": base64.b64encode(png_bytes(image)).decode("ascii"),
            "prompt": prompt,
            "num_inference_step": steps or self.spec.steps,
            "num_inference_steps": steps or self.spec.steps,
            "guidance_scale": guidance if guidance is not None else self.spec.guidance,
            "width": image.width,
            "height": image.height,
            "seed": int(seed),
            "enhance_prompt": False,
        }
        step = on_step or (lambda i, n: None)
        step(0, 1)
        edited = remote.run(
            lambda: self._attempt(payload),
            policy=self.policy,
            service=SERVICE,
            host=self.model,
            probe=lambda: step(0, 1),
        )
        step(1, 1)
        return edited

    def candidates(self) -> list[str]:
        """Every URL in round-robin order, starting one further each call; the ones not marked down first."""
        with self._lock:
            start = self._turn % len(self.urls)
            self._turn += 1
        order = self.urls[start:] + self.urls[:start]
        now = time.monotonic()
        return sorted(order, key=lambda url: self._down_until.get(url, 0.0) > now)

    async def _attempt(self, payload: dict) -> Image.Image:
        """Try each server once; the first that answers wins. Raises the last retryable failure."""
        failure = None
        async with remote.http_client(self.policy) as client:
            for url in self.candidates():
                try:
                    if url not in self._checked:
                        await self._check_health(client, url)
                    return await self._post(client, url, payload)
                except remote.RemoteFailure as exc:
                    failure = exc
                except httpx2.HTTPError as exc:
                    failure = remote.failure_of(exc, self.policy)
                failure.host = remote.host_of(url)
                if not failure.retry:
                    raise failure
                self._mark_down(url)
        raise failure

    async def _check_health(self, client: httpx2.AsyncClient, url: str) -> None:
        response = await client.get(f"{url}/health")
        if response.status_code != 200:
            raise remote.status_failure(response.status_code, response.headers, "its /health check failed")
        if _json(response).get("gpu_manager_ready") is False:  # the reference servers' "still loading"
            raise remote.RemoteFailure("is up but its model is not ready yet", retry=True)
        self._checked.add(url)
        self._down_until.pop(url, None)

    async def _post(self, client: httpx2.AsyncClient, url: str, payload: dict) -> Image.Image:
        response = await client.post(f"{url}/edit", json=payload)
        answer = _json(response)
        reason = (
            remote.shorten(str(answer.get("error") or answer.get("detail") or "")) if self.policy.quote_server else ""
        )
        if response.status_code >= 400:
            raise remote.status_failure(response.status_code, response.headers, reason)
        if not answer:
            raise remote.RemoteFailure("answered with something that is not the editing-server JSON", retry=False)
        if not answer.get("success"):
            raise remote.RemoteFailure(f"could not edit the image: {reason or 'no reason given'}", retry=False)
        return decode_image(answer.get("edited_image"))

    def _mark_down(self, url: str) -> None:
        self._checked.discard(url)
        self._down_until[url] = time.monotonic() + DOWN_SECONDS


def _json(response: httpx2.Response) -> dict:
    try:
        answer = response.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        return {}
    return answer if isinstance(answer, dict) else {}


def decode_image(data) -> Image.Image:
    """The server's base64 PNG as an RGB image; a `RemoteFailure` when it is missing or broken."""
    if not isinstance(data, str) or not data:
        raise remote.RemoteFailure("said success but sent no edited_image", retry=False)
    try:
        return load_image(base64_bytes(data))
    except BadInput as exc:
        raise remote.RemoteFailure(f"sent an edited_image that is not a readable image ({exc})", retry=False) from None
