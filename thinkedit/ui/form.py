"""A run handler's parameters and the page's `inputs` list, made from one ordered table of fields.

A tab's handler is described by a dict of field name → its default for API callers (`REQUIRED`: none), in the
order gradio_client callers pass the fields by position. `inputs(fields, controls)` lines the tab's components up
in that order, and `handler(fields, run)` is the function Gradio calls: its parameters are the fields (Gradio
reads their names and defaults for the API page and gradio_client), then the session. `run(form, session)` gets
the values by name (`form.max_turns`) and yields `{component: value}` updates; an output it leaves out keeps its
value. So a new control is one entry at the end of the table, one component in the tab's function in
`layout.py`, and its use in the handler; nothing depends on where the others sit. The outputs are a dataclass
of components (`outputs` lists them in field order, the endpoint's output order).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import gradio as gr

REQUIRED = inspect.Parameter.empty


def inputs(fields: dict[str, Any], controls: dict[str, Any]) -> list:
    """`controls` (field name → component) in the order of `fields`; every field needs exactly one control."""
    if set(controls) != set(fields):
        missing, extra = sorted(set(fields) - set(controls)), sorted(set(controls) - set(fields))
        raise ValueError(f"The controls do not match the fields: missing {missing}, not fields {extra}.")
    return [controls[name] for name in fields]


def outputs(components: Any) -> list:
    """A dataclass of components as an event's outputs, in the order of its fields."""
    return [getattr(components, each.name) for each in dataclasses.fields(components)]


def positional(fields: dict[str, Any], **given: Any) -> list:
    """The values a plain HTTP caller sends, by position: `given` by name, every other field's default."""
    unknown = sorted(set(given) - set(fields))
    missing = [name for name, default in fields.items() if default is REQUIRED and name not in given]
    if unknown or missing:
        raise ValueError(f"Unknown fields {unknown}, required fields not given {missing}.")
    return [given.get(name, default) for name, default in fields.items()]


def handler(fields: dict[str, Any], run: Callable[[SimpleNamespace, Any], Iterator[dict]], doc: str) -> Callable:
    """The function Gradio calls with the values of `fields` in order, then the session: it hands them to `run` by
    name and streams what `run` yields. `doc` describes it on the API page."""
    parameter = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [inspect.Parameter(name, parameter, default=default) for name, default in fields.items()]
        + [inspect.Parameter("session", parameter, default=None)]
        + [inspect.Parameter("request", parameter, default=None, annotation=gr.Request)]  # filled in by Gradio
    )

    def call(*args, **kwargs) -> Iterator[dict]:
        values = signature.bind(*args, **kwargs)
        values.apply_defaults()
        session, request = values.arguments.pop("session"), values.arguments.pop("request")
        form = SimpleNamespace(**values.arguments)
        form.queued_at = queued_since(request)  # not a field: when the page's click joined the queue
        yield from run(form, session)

    call.__signature__ = signature
    call.__annotations__ = {"request": gr.Request}  # how Gradio finds the parameter it fills (typing.get_type_hints)
    call.__doc__ = doc
    call.__name__ = run.__name__
    return call


def queued_since(request: gr.Request | None) -> float | None:
    """When the event now starting this handler joined Gradio's queue (`time.monotonic`), or None where that cannot
    be told (a call from Python, or a Gradio whose queue is not 6.31's: `Blocks._queue.active_jobs` of `Event`s
    with `enqueue_time`). A session's newest active event is the one whose handler starts now."""
    try:
        queue = request.request.app.get_blocks()._queue
        times = [
            event.enqueue_time
            for jobs in queue.active_jobs
            if jobs
            for event in jobs
            if event.session_hash == request.session_hash
        ]
    except AttributeError:
        return None
    return max(times, default=None)
