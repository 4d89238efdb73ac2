"""Backend specs: the one table row each editor and thinker has, and whether it can run here.

A spec names the class by import path, so listing backends never imports torch or diffusers.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import runtime
from .config import Settings
from .errors import BadInput, ThinkEditError


@dataclass(frozen=True)
class BackendSpec:
    """One editor or thinker: where its code is, what it runs on and its defaults."""

    name: str
    target: str  # "module:Class"
    kind: str  # "offline" (CPU, no weights) | "local" (weights on this machine) | "remote" (a server)
    description: str
    model: str | None = None  # default checkpoint or remote model name
    steps: int | None = None
    guidance: float | None = None
    options: dict[str, Any] = field(default_factory=dict)  # other model-card defaults
    packages: tuple[str, ...] = ()  # import names that must be installed
    size_gb: float | None = None  # download size of the default checkpoint, for messages
    gated: bool = False
    needs_url: bool = False  # remote backends that talk to a URL the user configures
    inference_providers: bool = False  # remote backends on Hugging Face Inference Providers (hub + HF_TOKEN)

    def load_class(self):
        module_name, _, class_name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ThinkEditError(
                f"The {self.name} backend needs packages that are not installed ({exc.name}): "
                "pip install -r requirements.txt"
            ) from exc
        return getattr(module, class_name)


def availability(spec: BackendSpec, model: str | None = None, url: str | None = None) -> tuple[bool, str]:
    """(can run here, why not / what it will use). Cheap: no model is loaded, nothing is fetched."""
    missing = [name for name in spec.packages if importlib.util.find_spec(name) is None]
    if missing:
        return False, f"package missing: {', '.join(missing)} (pip install -r requirements.txt)"
    if spec.kind == "offline":
        return True, "runs on the CPU, no weights needed"
    if spec.kind == "remote":
        if spec.needs_url and not url:
            return False, "no endpoint configured (set the URL flag or environment variable)"
        if spec.inference_providers and runtime.offline():
            return False, "HF_HUB_OFFLINE=1 is set: Inference Providers cannot be reached"
        if spec.inference_providers and not hf_token():
            return False, "needs HF_TOKEN in the environment"
        return True, f"remote: {_without_credentials(url) if url else model or spec.model}"
    checkpoint = model or spec.model
    where = weights_location(checkpoint)
    if where is None:
        size = f" (~{spec.size_gb:g} GB)" if spec.size_gb else ""
        return False, f"weights not in the local cache: {checkpoint}{size}"
    if not _has_cuda():
        return True, f"no GPU: runs on the CPU, very slowly ({where})"
    return True, f"GPU, weights at {where}"


def weights_location(checkpoint: str | None) -> str | None:
    """A local folder, or the hub cache folder of `checkpoint`, or None when it is not on this machine."""
    if not checkpoint:
        return None
    if Path(checkpoint).expanduser().is_dir():
        return str(Path(checkpoint).expanduser())
    from huggingface_hub import try_to_load_from_cache

    for marker in ("model_index.json", "config.json"):  # a diffusers pipeline, a transformers model
        try:
            found = try_to_load_from_cache(checkpoint, marker)
        except Exception:  # noqa: BLE001 - not a repo id (a path that does not exist), an unreadable cache
            return None
        if isinstance(found, str):
            return str(Path(found).parent)
    return None


def _without_credentials(urls: str) -> str:
    """Comma-separated URLs with any user:password@ part dropped, for display."""
    return ",".join(re.sub(r"//[^/@]*@", "//", url.strip()) for url in urls.split(","))


def _has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def find_spec(table: dict[str, BackendSpec], name: str, role: str) -> BackendSpec:
    if name not in table:
        raise BadInput(f"Unknown {role} '{name}'. Choose one of: {', '.join(table)}.")
    return table[name]


def build(spec: BackendSpec, settings: Settings):
    """Construct the backend as `Class(spec, settings)`: cheap, models load on first use via the runtime."""
    return spec.load_class()(spec, settings)


def model_for(spec: BackendSpec, settings: Settings, role: str) -> str | None:
    """The checkpoint or remote model a backend should use: the user's choice, else the spec's default."""
    return getattr(settings, f"{role}_model") or spec.model


def url_for(settings: Settings, role: str) -> str | None:
    return getattr(settings, f"{role}_url") or None


def hf_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def make_editor(settings: Settings, name: str | None = None):
    from .editors import EDITORS

    return build(find_spec(EDITORS, name or settings.editor, "editor"), settings)


def make_thinker(settings: Settings, name: str | None = None):
    from .thinkers import THINKERS

    return build(find_spec(THINKERS, name or settings.thinker, "thinker"), settings)


def make_judge(settings: Settings, name: str | None = None):
    from .judges import JUDGES

    return build(find_spec(JUDGES, name or settings.judge, "judge"), settings)


def backend_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every editor and thinker with whether it can run here and why not — for `backends` and the UI."""
    from .editors import EDITORS
    from .thinkers import THINKERS

    rows = []
    for role, table in (("editor", EDITORS), ("thinker", THINKERS)):
        for spec in table.values():
            chosen = getattr(settings, role) == spec.name
            ok, reason = availability(
                spec,
                model=getattr(settings, f"{role}_model") if chosen else None,
                url=url_for(settings, role) if chosen or spec.needs_url else None,
            )
            rows.append({"role": role, "name": spec.name, "available": ok, "reason": reason,
                         "kind": spec.kind, "description": spec.description})  # fmt: skip
    return rows
