"""What a person may choose for one run from the page, its API or the MCP tool, and who gets which key.

Everyone picks the backends. Outside public mode a person may also name models, URLs, their own keys and the
speed. A URL other than the one the server configured is the caller's: no key of the server's ever goes there
(`remote.credential`), only the caller's own key if they typed one. Their keys travel in the request's `Caller`,
never in the server's settings, and are never saved, logged or shown.
"""

from __future__ import annotations

from typing import Any

from ..config import Caller, Settings
from .view import without_paths

CALLER_ROLES = ("editor", "thinker")  # the roles whose model, URL and key the page offers
CHOICES = tuple(f"{role}_{part}" for role in CALLER_ROLES for part in ("model", "url", "key"))


def user_settings(settings: Settings, editor: str, thinker: str | None, choices: dict[str, Any]) -> Settings:
    """The server's settings with the person's choices: backends, and (outside public mode) `choices` — models,
    URLs and keys (CHOICES) and the speed; empty ones keep the server's."""
    backends = dict(editor=editor, thinker=thinker or settings.thinker)
    if settings.public:
        return settings.replace(**backends)
    given = {key: value.strip() for key, value in choices.items() if isinstance(value, str) and value.strip()}
    keys = {role: given.pop(f"{role}_key") for role in CALLER_ROLES if f"{role}_key" in given}
    named = frozenset(
        role
        for role in CALLER_ROLES
        if f"{role}_url" in given and not same_url(given[f"{role}_url"], settings.role(role).url)
    )
    return settings.replace(**backends, **given).for_caller(Caller(named_urls=named, keys=keys))


def same_url(given: str, configured: str | None) -> bool:
    """Whether `given` names the server's own endpoint(s): the same comma-separated URLs, trailing slashes aside."""

    def normal(urls: str) -> list[str]:
        return [url.strip().rstrip("/") for url in urls.split(",") if url.strip()]

    return configured is not None and normal(given) == normal(configured)


def shown_rows(rows: list[dict[str, Any]], public: bool) -> list[dict[str, Any]]:
    """The backend rows as a page (its dropdowns, the MCP `list_backends` tool) may show them: on a public page
    their reasons and descriptions name no folder or URL of the server's."""
    if not public:
        return rows
    return [
        {
            **row,
            "reason": row["reason"] and without_paths(row["reason"]),
            "description": without_paths(row["description"]),
        }
        for row in rows
    ]


def backend_choices(rows: list[dict[str, Any]], role: str, public: bool, chosen: str | None) -> list[tuple[str, str]]:
    """A role's dropdown (label, value) pairs. A backend that cannot run here is marked so (`backends_note` says why);
    a public page lists only what can run (a visitor cannot set up the rest), besides the server's own `chosen`."""
    choices = []
    for row in rows:
        if row["role"] == role and (row["available"] or not public or row["name"] == chosen):
            label = row["name"] if row["available"] else f"{row['name']} ({CANNOT_RUN})"
            choices.append((label, row["name"]))
    return choices


CANNOT_RUN = "cannot run here"


def backends_note(rows: list[dict[str, Any]], public: bool, picked: list[tuple[str, str | None]]) -> str:
    """What the page says under its backend dropdowns: why each picked (role, name) that cannot run here cannot, and
    on a public page which backends are not set up on this server, and why."""
    found = {(row["role"], row["name"]): row for row in rows}
    lines = [
        f"⚠ The {role} **{name}** {CANNOT_RUN}: {found[role, name]['reason']}."
        for role, name in dict.fromkeys(picked)
        if (role, name) in found and not found[role, name]["available"]
    ]
    if public:
        missing: dict[str, list[str]] = {}
        for row in rows:
            if row["role"] in CALLER_ROLES and not row["available"]:
                missing.setdefault(row["reason"], []).append(row["name"])
        if missing:
            lines.append(
                "Not set up on this server: "
                + "; ".join(f"{', '.join(names)} ({reason})" for reason, names in missing.items())
                + "."
            )
    return "\n\n".join(lines)
