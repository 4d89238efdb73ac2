"""Any OpenAI-compatible chat server as the thinker: vLLM serving EditThinker-8B, GPT-4.1, others.

Through the `openai` package, not `huggingface_hub.InferenceClient`: the latter refuses every URL,
127.0.0.1 included, while HF_HUB_OFFLINE=1 is set — exactly how an air-gapped GPU box with a local
vLLM runs. The server's key (THINKEDIT_THINKER_API_KEY or OPENAI_API_KEY) goes only to the URL the server
configured (`--thinker-url`); a URL a caller named gets the caller's own key or none (keyless vLLM gets a
placeholder). With no
`--thinker-model`, the first model the server lists is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from openai import AsyncOpenAI

from .. import remote
from ..backend import BackendSpec
from ..config import Settings
from ..errors import BadInput, ThinkEditError
from ..registry import url_for
from .chat import ChatThinker


class OpenAIThinker(ChatThinker):
    credentials = "THINKEDIT_THINKER_API_KEY or OPENAI_API_KEY"

    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        super().__init__(spec, settings)
        url = url_for(settings, "thinker")
        if not url:
            raise BadInput("The openai thinker needs a server: set --thinker-url (THINKEDIT_THINKER_URL), "
                           "e.g. http://gpu-box:8000/v1.")  # fmt: skip
        self.url = remote.check_url(url, "--thinker-url")

    @property
    def host(self) -> str:
        return remote.host_of(self.url)

    def api_key(self) -> str:
        return (
            remote.credential(self.settings, "thinker", "THINKEDIT_THINKER_API_KEY", "OPENAI_API_KEY") or remote.NO_KEY
        )

    async def open_stream(self, messages: list[dict], key: str | None) -> tuple[AsyncIterable[Any], Any]:
        client = AsyncOpenAI(base_url=self.url, api_key=key, timeout=self.policy.timeout(), max_retries=0)
        try:
            if not self.model:
                self.model = await served_model(client, self.url)
            stream = await client.chat.completions.create(
                model=self.model,
                messages=messages,
                stream=True,
                max_tokens=self.settings.thinker_max_new_tokens,
            )
        except BaseException:
            await client.close()
            raise
        return stream, client


async def served_model(client: AsyncOpenAI, url: str) -> str:
    """The first model the server lists (a vLLM server serves one)."""
    page = await client.models.list()
    if not page.data:
        raise ThinkEditError(f"The thinker server at {remote.host_of(url)} lists no models; set --thinker-model.")
    return page.data[0].id
