"""Any OpenAI-compatible chat server as the thinker: vLLM serving EditThinker-8B, GPT-4.1, others.

Through the `openai` package, not `huggingface_hub.InferenceClient`: the latter refuses every URL,
127.0.0.1 included, while HF_HUB_OFFLINE=1 is set — exactly how an air-gapped GPU box with a local
vLLM runs. The server's key (THINKEDIT_THINKER_API_KEY or OPENAI_API_KEY) goes only to the URL the server
configured (`--thinker-url`); a URL a caller named gets the caller's own key or none (keyless vLLM gets a
placeholder). With no `--thinker-model`, the first model the server lists is used. The answer is streamed;
a server that sends the whole completion instead is read too. The stream asks for `usage` (the token counts); a
server that refuses `stream_options` is asked again without it, and from then on never with it. As a judge (`role="judge"`) the same holds for
--judge-url, --judge-model and THINKEDIT_JUDGE_API_KEY.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from types import SimpleNamespace
from typing import Any

from openai import AsyncOpenAI, BadRequestError, DefaultAsyncHttpxClient, UnprocessableEntityError

from .. import remote
from ..backend import BackendSpec
from ..config import Settings
from ..errors import BadInput, ThinkEditError
from .chat import USAGE_OPTION, ChatThinker


class OpenAIThinker(ChatThinker):
    asks_usage = True  # False once the server refused `stream_options`

    def __init__(self, spec: BackendSpec, settings: Settings, role: str = "thinker") -> None:
        super().__init__(spec, settings, role)
        self.key_variable = f"THINKEDIT_{role.upper()}_API_KEY"
        self.credentials = f"{self.key_variable} or OPENAI_API_KEY"
        url = settings.role(role).url
        if not url:
            raise BadInput(
                f"The openai {role} needs a server: set --{role}-url (THINKEDIT_{role.upper()}_URL), "
                "e.g. http://gpu-box:8000/v1."
            )
        self.url = remote.check_url(url, f"--{role}-url")

    @property
    def host(self) -> str:
        return remote.host_of(self.url)

    def api_key(self) -> str:
        return remote.credential(self.settings, self.role, self.key_variable, "OPENAI_API_KEY") or remote.NO_KEY

    async def open_stream(self, messages: list[dict], key: str | None) -> tuple[AsyncIterable[Any], Any]:
        timeout = self.policy.timeout()
        answers = remote.bound_answers(DefaultAsyncHttpxClient(timeout=timeout), self.policy)
        client = AsyncOpenAI(base_url=self.url, api_key=key, timeout=timeout, max_retries=0, http_client=answers)
        try:
            if not self.model:
                self.model = await served_model(client, self.url, self.role)
            stream = await self.create(client, messages)
            if stream.response.headers.get("content-type", "").startswith("application/json"):
                return whole_answer(await stream.response.aread()), client
        except BaseException:
            await client.close()
            raise
        return stream, client

    async def create(self, client: AsyncOpenAI, messages: list[dict]):
        """The streamed completion, with `usage` asked for unless the server refused that before."""
        options = dict(
            model=self.model, messages=messages, stream=True, max_tokens=self.settings.thinker_max_new_tokens
        )
        if self.asks_usage:
            try:
                return await client.chat.completions.create(**options, **USAGE_OPTION)
            except (BadRequestError, UnprocessableEntityError) as exc:
                if "stream_options" not in str(exc):
                    raise
                self.asks_usage = False
        return await client.chat.completions.create(**options)


async def whole_answer(body: bytes) -> AsyncIterator[Any]:
    """A server that ignores `stream` and sends the whole completion at once: its message as one chunk."""
    try:
        data = json.loads(body)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    for choice in data.get("choices") or []:
        message = choice.get("message") or {}
        thought = message.get("reasoning_content") or message.get("reasoning")
        yield SimpleNamespace(
            choices=[SimpleNamespace(delta=SimpleNamespace(content=message.get("content"), reasoning_content=thought))],
            usage=data.get("usage"),
        )


async def served_model(client: AsyncOpenAI, url: str, role: str = "thinker") -> str:
    """The first model the server lists (a vLLM server serves one)."""
    page = await client.models.list()
    if not page.data:
        raise ThinkEditError(f"The {role} server at {remote.host_of(url)} lists no models; set --{role}-model.")
    return page.data[0].id
