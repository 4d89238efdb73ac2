"""Failures of the hub and of the accelerator turned into sentences a person can act on."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ThinkEditError
from .device import empty_cuda_cache
from .memory import is_out_of_memory, out_of_memory


def offline() -> bool:
    """Whether huggingface_hub refuses to reach the hub: HF_HUB_OFFLINE as it read it when imported."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def missing_weights(
    checkpoint: str,
    size_gb: float | None,
    flag: str = "--editor-model",
    *,
    gated: bool = False,
    file: str | None = None,
    instead: str | None = None,
) -> ThinkEditError:
    """The weights of `checkpoint` (or only its `file`) are not here: how to get them, or what to do `instead`."""
    about = ", ".join(([file] if file else []) + ([f"about {size_gb:g} GB"] if size_gb else []))
    why = " and HF_HUB_OFFLINE=1 forbids downloading them" if offline() else ""
    licence = (
        f"It is gated: first accept its licence at https://huggingface.co/{checkpoint} and set HF_TOKEN. "
        if gated
        else ""
    )
    download = f"hf download {checkpoint}" + (f" {file}" if file else "")
    return ThinkEditError(
        f"The weights of {checkpoint}{f' ({about})' if about else ''} are not on this machine{why}. {licence}"
        f"Download them once with `{download}` (on a machine with internet), or "
        f"{instead or f'point {flag} at a local folder'}."
    )


def gated_checkpoint(checkpoint: str) -> ThinkEditError:
    return ThinkEditError(
        f"{checkpoint} is gated: accept its licence at https://huggingface.co/{checkpoint} while logged in, "
        "then set HF_TOKEN to a token of that account (or download it once and point at the folder)."
    )


@contextmanager
def friendly_errors(
    what: str,
    checkpoint: str | None = None,
    size_gb: float | None = None,
    *,
    offload: str = "none",
    flag: str = "--editor-model",
    gated: bool = False,
) -> Iterator[None]:
    """Turn hub and out-of-memory failures inside the block into `ThinkEditError`s saying what to do."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        yield
    except ThinkEditError:
        raise
    except GatedRepoError:
        raise gated_checkpoint(checkpoint or "This checkpoint") from None
    except (LocalEntryNotFoundError, RepositoryNotFoundError):
        raise missing_weights(checkpoint or "the checkpoint", size_gb, flag, gated=gated) from None
    except Exception as exc:
        if is_out_of_memory(exc):
            gc.collect()
            empty_cuda_cache()
            raise out_of_memory(what, offload) from None
        if checkpoint and _is_missing(exc, checkpoint):
            raise missing_weights(checkpoint, size_gb, flag, gated=gated) from None
        raise


def _is_missing(exc: BaseException, checkpoint: str) -> bool:
    """diffusers and transformers wrap hub misses in OSError / EnvironmentError with these phrases."""
    text = str(exc)
    phrases = ("Cannot find", "couldn't connect", "offline mode", "does not appear to have", "not a local folder")
    return isinstance(exc, OSError) and (checkpoint in text or any(p in text for p in phrases))
