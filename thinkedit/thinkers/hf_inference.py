"""A vision-language model on Hugging Face Inference Providers as the thinker, through `InferenceClient`.

`--thinker-model` (default Qwen/Qwen2.5-VL-72B-Instruct), `--thinker-provider` (default: the hub's
automatic routing), HF_TOKEN. `--thinker-url` instead points the client at a dedicated Inference
Endpoint or any OpenAI-compatible URL. `huggingface_hub` refuses every URL while HF_HUB_OFFLINE=1 is
set; for a local server on an offline machine use the `openai` thinker. Token counts are asked for as the `openai`
thinker asks them (`stream_options`), and not again once an endpoint refused that.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from .. import remote
from ..backend import BackendSpec
from ..config import Settings
from .chat import USAGE_OPTION, ChatThinker

PROVIDERS_HOST = "router.huggingface.co"


class HFInferenceThinker(ChatThinker):
    credentials = "HF_TOKEN"
    asks_usage = True  # False once the endpoint refused `stream_options`

    def __init__(self, spec: BackendSpec, settings: Settings, role: str = "thinker") -> None:
        super().__init__(spec, settings, role)
        chosen = settings.role(role)
        self.url = remote.check_url(chosen.url, f"--{role}-url") if chosen.url else None
        self.provider = chosen.provider or None
        self.service = f"The {role} endpoint" if self.url else "Hugging Face Inference Providers"

    @property
    def host(self) -> str:
        return remote.host_of(self.url) if self.url else PROVIDERS_HOST

    def api_key(self) -> str | None:
        return remote.hub_token(self.settings, self.role)

    async def open_stream(self, messages: list[dict], key: str | None) -> tuple[AsyncIterable[Any], Any]:
        client = remote.hub_client(self.policy, base_url=self.url, provider=self.provider, token=key)
        options = dict(model=self.model, stream=True, max_tokens=self.settings.thinker_max_new_tokens)
        try:
            if self.asks_usage:
                try:
                    return await client.chat_completion(messages, **options, **USAGE_OPTION), client
                except Exception as exc:
                    status = getattr(getattr(exc, "response", None), "status_code", None)
                    if status not in (400, 422) or "stream_options" not in str(exc):
                        raise
                    self.asks_usage = False
            return await client.chat_completion(messages, **options), client
        except BaseException:
            await client.close()
            raise
