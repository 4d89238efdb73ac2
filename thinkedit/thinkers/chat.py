"""What the two remote chat thinkers (`openai`, `hf-inference`) share: the message, the stream, the parse.

One user message: the source image, the edited image (base64 PNG data URLs, longest side at most
`thinker_image_side`), then the rendered template. The answer is streamed; servers that split the
reasoning out (vLLM's reasoning parsers: `reasoning_content`, some providers: `reasoning`) are read
too, and both parts are handed to `parse_critique`. A subclass only says how to open the stream. The stream asks
for the server's token counts (`stream_options={"include_usage": true}`); a server that sends no `usage` leaves them
unknown (None), never 0.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from typing import Any

from PIL import Image

from .. import remote
from ..backend import BackendSpec, OnToken
from ..compute import Tokens
from ..config import Settings
from ..critique import answer_chars
from ..errors import Cancelled
from ..images import fit_within
from ._prompted import PromptedThinker

logger = logging.getLogger(__name__)
USAGE_OPTION = {"stream_options": {"include_usage": True}}  # how OpenAI and vLLM are asked for `usage` in a stream


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

    def answer(self, images: list[Image.Image], text: str, on_token: OnToken | None) -> tuple[str, str, Tokens]:
        """(content, reasoning, tokens) of one streamed answer; `on_token` sees every piece as it arrives."""
        messages, key = self.messages(images, text), self.api_key()
        emit = on_token or (lambda piece: None)

        async def attempt() -> tuple[str, str, Tokens]:
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


async def read_stream(
    chunks: AsyncIterable[Any], emit: OnToken, policy: remote.Policy, limit: int
) -> tuple[str, str, Tokens]:
    """Collect `content` and `reasoning_content` / `reasoning` deltas, at most `limit` characters of both together,
    and the last `usage` the server sent: a server that goes on past the limit (it ignores max_tokens) is cut there,
    as its token limit would have, and its count is then unknown. A stream that breaks after the first piece is not
    retried: the person has already seen those tokens."""
    content: list[str] = []
    reasoning: list[str] = []
    received, left, tokens = 0, limit, Tokens()
    try:
        async for chunk in chunks:
            received += 1
            tokens = usage_tokens(getattr(chunk, "usage", None)) or tokens
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
                tokens = Tokens()
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
    return "".join(content), "".join(reasoning), tokens


def usage_tokens(usage: Any) -> Tokens | None:
    """A server's `usage` (an object or a dict) as Tokens; None when it holds no two whole, non-negative counts."""
    counts = []
    for name in ("prompt_tokens", "completion_tokens"):
        value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
            return None
        counts.append(value)
    return Tokens(*counts)
