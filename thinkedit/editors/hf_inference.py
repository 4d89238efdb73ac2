"""An image-to-image model on Hugging Face Inference Providers, through `InferenceClient.image_to_image`.

`--editor-model` (default FLUX.1 Kontext [dev]), `--editor-provider` (default: the first provider the
hub lists for the model), HF_TOKEN. `--editor-url` instead sends the request to a dedicated Inference
Endpoint. `huggingface_hub` refuses every URL while HF_HUB_OFFLINE=1 is set.
"""

from __future__ import annotations

from PIL import Image

from .. import remote
from ..backend import BackendSpec, OnStep
from ..config import Settings
from ..images import load_image, png_bytes

PROVIDERS_HOST = "router.huggingface.co"


class HFInferenceEditor:
    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        chosen = settings.role("editor")
        self.model = chosen.model or spec.model
        self.url = remote.check_url(chosen.url, "--editor-url") if chosen.url else None
        self.provider = chosen.provider or None
        self.policy = remote.Policy.from_settings(settings, "editor")

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
        key = remote.hub_token(self.settings, "editor")
        source = png_bytes(image)

        async def attempt() -> Image.Image:
            async with remote.hub_client(self.policy, provider=self.provider, token=key) as client:
                return await client.image_to_image(
                    source,
                    prompt,
                    model=self.url or self.model,
                    num_inference_steps=steps or self.spec.steps,
                    guidance_scale=guidance if guidance is not None else self.spec.guidance,
                    seed=int(seed),
                )

        step = on_step or (lambda i, n: None)
        step(0, 1)
        host = remote.host_of(self.url) if self.url else PROVIDERS_HOST
        edited = remote.run(
            attempt,
            policy=self.policy,
            service="The image-to-image service",
            host=host,
            secrets=(key,),
            probe=lambda: step(0, 1),
            credentials="HF_TOKEN",
        )
        step(1, 1)
        return load_image(edited)
