"""The backend tables by role, whether a backend can run here, and `build_backend`, the one way to build one.

The rows themselves live beside their code (`EDITORS` in thinkedit/editors, `THINKERS` in
thinkedit/thinkers, `JUDGES` in thinkedit/judges); a row names its class by import path, so listing
backends imports no torch.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from . import runtime, zerogpu
from .backend import BackendSpec
from .config import Settings
from .editors import EDITORS
from .errors import BadInput
from .judges import JUDGES
from .remote import hf_token
from .thinkers import THINKERS

TABLES: dict[str, dict[str, BackendSpec]] = {"editor": EDITORS, "thinker": THINKERS, "judge": JUDGES}


# Why a backend cannot run here, as a visitor of a public page reads it: no flag, variable or folder of the server's,
# which a visitor can neither see nor change. The operator reads the reason with what to set (`availability`).
FOR_VISITORS = {
    "installed": "not installed on this server",
    "endpoint": "no model server set up for it on this server",
    "offline": "this server does not reach the internet",
    "token": "no access to Inference Providers on this server",
    "weights": "weights not on this server",
}


def availability(
    role: str, spec: BackendSpec, settings: Settings, model: str | None = None, url: str | None = None
) -> tuple[bool, str]:
    """(can run here, why not / what it will use) for a `role` backend. Cheap: nothing is loaded or fetched. Why not
    is said in the operator's terms (what to install or set), or on a public server in a visitor's (`FOR_VISITORS`)."""
    checkpoint = model or spec.model
    why = why_not(role, spec, settings, checkpoint, url)
    if why is not None:
        kind, operator = why
        return False, FOR_VISITORS[kind] if settings.public else operator
    if spec.kind == "offline":
        return True, "runs on the CPU, no weights needed"
    if spec.kind == "remote":
        return True, f"remote: {_without_credentials(url) if url else checkpoint}"
    where = weights_location(checkpoint)
    size = f" (~{spec.size_gb:g} GB)" if spec.size_gb else ""
    where = f"weights at {where}" if where else f"{checkpoint}{size} downloads on first use"
    device = runtime.pick_device(settings)
    if device.startswith("cuda"):
        return True, f"GPU, {where}"
    if device == "mps":
        return True, f"Apple GPU (MPS), {where}"
    return True, f"no GPU: runs on the CPU, very slowly ({where})"


def why_not(
    role: str, spec: BackendSpec, settings: Settings, checkpoint: str | None, url: str | None
) -> tuple[str, str] | None:
    """Why a backend cannot run here — (its `FOR_VISITORS` kind, what the operator can do) — or None when it can."""
    missing = [name for name in spec.packages if importlib.util.find_spec(name) is None]
    if missing:
        return "installed", f"package missing: {', '.join(missing)} (pip install -r requirements.txt)"
    code = missing_code(spec, settings)
    if code:
        return "installed", code
    if spec.kind == "remote" and spec.needs_url and not url:
        return "endpoint", f"no endpoint configured: set --{role}-url (THINKEDIT_{role.upper()}_URL)"
    if spec.kind == "remote" and spec.inference_providers and runtime.offline():
        return "offline", (
            "HF_HUB_OFFLINE=1 is set: Inference Providers cannot be reached (huggingface_hub then refuses every "
            "URL); for a local OpenAI-compatible server use the openai thinker"
        )
    if spec.kind == "remote" and spec.inference_providers and not hf_token():
        return "token", "needs HF_TOKEN in the environment"
    if spec.kind == "local" and runtime.offline() and weights_location(checkpoint) is None:
        size = f" (~{spec.size_gb:g} GB)" if spec.size_gb else ""
        return "weights", f"weights not in the local cache: {checkpoint}{size}; HF_HUB_OFFLINE=1 forbids downloading"
    return None


def missing_code(spec: BackendSpec, settings: Settings) -> str | None:
    """Why the code a backend needs beyond its packages is not here (with how to get it), or None."""
    if not spec.code_check:
        return None
    module_name, _, function = spec.code_check.partition(":")
    return getattr(importlib.import_module(module_name), function)(settings)


def weights_location(
    checkpoint: str | None, markers: tuple[str, ...] = ("model_index.json", "config.json")
) -> str | None:
    """A local folder, or the hub cache folder of `checkpoint` that holds one of `markers` (by default a diffusers
    pipeline's or a transformers model's), or None when it is not on this machine."""
    if not checkpoint:
        return None
    if Path(checkpoint).expanduser().is_dir():
        return str(Path(checkpoint).expanduser())
    from huggingface_hub import try_to_load_from_cache

    for marker in markers:
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


def find_spec(role: str, name: str) -> BackendSpec:
    table = TABLES[role]
    if name not in table:
        raise BadInput(f"Unknown {role} '{name}'. Choose one of: {', '.join(table)}.")
    return table[name]


def build_backend(role: str, settings: Settings, name: str | None = None):
    """The `role` backend `name` (default: the one `settings` chose), built as `Class(spec, settings)`.

    Refuses, with the reason (on a public server in a visitor's terms), a backend that cannot run here. Building is
    cheap: models load on first use through the runtime's cache. On ZeroGPU a local backend's every call becomes its
    own GPU slice.
    """
    chosen = settings.role(role)
    spec = find_spec(role, name or chosen.backend)
    checkpoint = chosen.model or spec.model
    why = why_not(role, spec, settings, checkpoint, chosen.url)
    if why is not None:
        kind, operator = why
        refusal = f"The {role} '{spec.name}' cannot run here"
        if kind == "weights" and not settings.public:  # how to get them, which a visitor of a public page cannot do
            gated = spec.gated and checkpoint == spec.model
            missing = runtime.missing_weights(checkpoint, spec.size_gb, f"--{role}-model", gated=gated)
            raise BadInput(f"{refusal}. {missing}")
        reason = FOR_VISITORS[kind] if settings.public else operator
        raise BadInput(f"{refusal}: {reason.rstrip('.')}. Choose another {role}.")
    return zerogpu.sliced(spec.load_class()(spec, settings))


def backend_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every editor, thinker and judge with whether it can run here and why not — for `backends` and the UI."""
    rows = []
    for role, table in TABLES.items():
        configured = settings.role(role)
        for spec in table.values():
            chosen = configured.backend == spec.name
            ok, reason = availability(
                role,
                spec,
                settings,
                model=configured.model if chosen else None,
                url=configured.url if chosen or spec.needs_url else None,
            )
            rows.append(
                {
                    "role": role,
                    "name": spec.name,
                    "available": ok,
                    "reason": reason,
                    "kind": spec.kind,
                    "description": spec.description,
                }
            )
    return rows
