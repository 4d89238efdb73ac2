"""What the two remote chat thinkers (`openai`, `hf-inference`) share: the message, the stream, the parse.

One user message: the source image, the edited image (base64 PNG data URLs, longest side at most
`thinker_image_side`), then the rendered template. The answer is streamed; servers that split the
reasoning out (vLLM's reasoning parsers: `reasoning_content`, some providers: `reasoning`) are read
too, and both parts are handed to `parse_critique`. A subclass only says how to open the stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from typing import Any

from PIL import Image

from .. import remote
from ..backend import BackendSpec, OnToken
from ..config import Settings
from ..critique import answer_chars
from ..errors import Cancelled
from ..images import fit_within
from ._prompted import PromptedThinker

logger = logging.getLogger(__name__)


class ChatThinker(PromptedThinker):
    credentials: str | None = None  # where the key comes from, named in 401/403 messages
    # "ours": the images (PNG, fitted to thinker_image_side), then the text; "viescore": VIEScore's GPT request,
    # the text, then the images as JPEG at their own size (the judge's official protocol sets it)
    layout: str = "ours"

    def __init__(self, spec: BackendSpec, settings: Settings, role: str = "thinker") -> None:
        super().__init__(spec, settings, role)
        self.service = f"The {role} server"
        self.policy = remote.Policy.from_settings(settings, role)

    # -- what a subclass provides ------------------------------------------------------------------------

    @property
    def host(self) -> str:
        raise NotImplementedError

    def api_key(self) -> str | None:
        raise NotImplementedError

    async def open_stream(self, messages: list[dict], key: str | None) -> tuple[AsyncIterable[Any], Any]:
        """(chunks, the client to close afterwards) for one streamed chat completion."""
        raise NotImplementedError

    # -- the shared part ---------------------------------------------------------------------------------

    def messages(self, images: list[Image.Image], text: str) -> list[dict]:
        text_part = {"type": "text", "text": text}
        if self.layout == "viescore":
            pictures = [{"type": "image_url", "image_url": {"url": remote.data_url(image, "JPEG")}} for image in images]
            return [{"role": "user", "content": [text_part, *pictures]}]
        side = self.settings.thinker_image_side
        pictures = [
            {"type": "image_url", "image_url": {"url": remote.data_url(fit_within(image, side))}} for image in images
        ]
        return [{"role": "user", "content": [*pictures, text_part]}]

    def answer(self, images: list[Image.Image], text: str, on_token: OnToken | None) -> tuple[str, str]:
        """(content, reasoning) of one streamed answer; `on_token` sees every piece as it arrives."""
        messages, key = self.messages(images, text), self.api_key()
        emit = on_token or (lambda piece: None)

        async def attempt() -> tuple[str, str]:
            chunks, client = await self.open_stream(messages, key)
            try:
                return await read_stream(chunks, emit, self.policy, answer_chars(self.settings.thinker_max_new_tokens))
            finally:
                await client.close()

        return remote.run(
            attempt,
            policy=self.policy,
            service=self.service,
            host=self.host,
            secrets=(key,),
            probe=lambda: emit(""),
            credentials=self.credentials,
        )


async def read_stream(chunks: AsyncIterable[Any], emit: OnToken, policy: remote.Policy, limit: int) -> tuple[str, str]:
    """Collect `content` and `reasoning_content` / `reasoning` deltas, at most `limit` characters of both together:
    a server that goes on past that (it ignores max_tokens) is cut there, as its token limit would have. A stream
    that breaks after the first piece is not retried: the person has already seen those tokens."""
    content: list[str] = []
    reasoning: list[str] = []
    received, left = 0, limit
    try:
        async for chunk in chunks:
            received += 1
            for choice in getattr(chunk, "choices", None) or []:
                delta = choice.delta
                thought = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
                for piece, parts in ((thought, reasoning), (getattr(delta, "content", None), content)):
                    if piece and left > 0:
                        parts.append(piece[:left])
                        left -= len(parts[-1])
                        emit(parts[-1])
            if left <= 0:
                logger.warning("The answer reached %d characters, its token limit's worth, and was cut there.", limit)
                break
    except (Cancelled, remote.RemoteFailure):
        raise
    except Exception as exc:
        if not (content or reasoning):
            raise
        failure = remote.failure_of(exc, policy)
        raise remote.RemoteFailure(f"{failure.happened} in the middle of its answer", retry=False) from None
    if not received:  # e.g. a proxy's HTML error page with status 200: not one server-sent event in it
        raise remote.RemoteFailure("answered with something that is not a chat completion stream", retry=False)
    return "".join(content), "".join(reasoning)
