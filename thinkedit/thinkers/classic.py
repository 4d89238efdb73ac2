"""Offline critic: measures the edit against the source and the intent of the ORIGINAL instruction.

It reads the instruction with `thinkedit.instructions.read`, builds what the source would look like
with the asked operations (on a small copy), and compares the edited image with it: luminance,
contrast, saturation, white balance, sepia tone, vignette, detail, geometry, border pixels, text band,
color masks, and where pixels changed that should not have (preservation), plus clipping and banding
(quality). It speaks the same `<think>/<score>/<answer>` text as EditThinker-8B, streamed in chunks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from ..backend import BackendSpec, OnToken
from ..config import Settings
from ..critique import Critique, defuse, format_critique, parse_critique, parse_polish
from ..editors.classic import GENERATIVE, LUMA, SEPIA, apply, planned_size, radial, text_box
from ..instructions import COLORS, GEOMETRY, LIMITS, REPERTOIRE, SIZED, Op, applied, describe, join, read, resolve
from ..regions import NoRegion, color_mask, grow, hsv, select

WORK_SIDE = 256  # global measurements run on copies this size; detail on a full-resolution crop this size
LOCAL = ("border", "text", "recolor", "keep_color")
SIDE_EFFECTS = {  # features an operation may move besides its own, so they are not called unexpected
    "sepia": {"saturation", "warmth", "contrast"},
    "grayscale": {"saturation", "warmth"},
    "invert": {"brightness", "contrast", "saturation", "warmth", "detail"},
    "vignette": {"brightness", "contrast"},
    "blur": {"contrast"},
    "sharpen": {"contrast"},
    "pixelate": {"contrast"},
    "posterize": {"contrast", "saturation", "detail", "brightness"},
    "contrast": {"saturation", "detail"},
    "brightness": {"saturation", "contrast"},
    "saturation": {"warmth"},
    "warmth": {"saturation", "brightness"},
    "recolor": {"saturation", "warmth"},
    "keep_color": {"saturation", "warmth"},
    "border": {"brightness", "contrast", "saturation", "warmth", "detail"},
    "text": {"brightness", "contrast", "detail"},
    "rotate": {"brightness", "contrast", "detail"},
    "crop": {"detail"},
    "resize": {"detail"},
}
FEATURE_OF = {
    "brightness": "brightness",
    "contrast": "contrast",
    "saturation": "saturation",
    "warmth": "warmth",
    "grayscale": "saturation",
    "blur": "detail",
    "sharpen": "detail",
}


@dataclass
class Part:
    score: float  # 0..1: how fully this part of the instruction was done
    finding: str  # one sentence with the measured numbers
    ask: str | None  # explicit text for this part in the refined prompt


class ClassicThinker:
    model = None

    def __init__(self, spec: BackendSpec, settings: Settings):
        self.spec = spec
        self.settings = settings

    def critique(
        self,
        source: Image.Image,
        edited: Image.Image,
        instruction: str,
        prompt: str,
        *,
        on_token: OnToken | None = None,
    ) -> Critique:
        text = review(source, edited, instruction, prompt)
        stream(text, on_token)
        return parse_critique(text)

    def polish(self, source: Image.Image, instruction: str, *, on_token: OnToken | None = None) -> str:
        plan = read(instruction)
        asks = [describe(resolve(op, source.size)) for op in plan.ops] + [defuse(part) for part in plan.unknown]
        if plan.looks:
            thought = (
                f"The instruction names a look ({', '.join(plan.looks)}) without amounts; I spell out its usual recipe."
            )
        elif plan.ops:
            thought = "The instruction is clear; I state every operation with its amount."
        else:
            thought = f"None of this is a {REPERTOIRE} change I can state more precisely; I keep it as written."
        if plan.unknown:
            thought += f" Not {REPERTOIRE}: {'; '.join(defuse(p) for p in plan.unknown)}."
        text = f"<think>{thought}</think>\n<answer>{join(asks) or defuse(instruction)}</answer>"
        stream(text, on_token)
        return parse_polish(text, instruction)


def stream(text: str, on_token: OnToken | None) -> None:
    """Hand the text to `on_token` a line at a time, as a model would stream it."""
    if on_token is None:
        return
    for line in text.splitlines(keepends=True):
        on_token(line)


# -- the review ---------------------------------------------------------------------------------------


@dataclass
class Views:
    """Everything a review measures: small float copies (0..255) and a few full-resolution arrays."""

    size: tuple[int, int]  # the size the instruction asks for: the source's, unless it asks for geometry
    scale: float  # full-resolution pixels per small pixel
    untouched: np.ndarray  # the source squeezed into the asked size; all small copies have that shape
    edited: np.ndarray
    reference: np.ndarray  # the source with only the asked geometry: what "unchanged" means here
    base: np.ndarray  # the source with every asked operation except the local ones (border, text, colors)
    expected: np.ndarray  # the source with every asked operation
    source_full: np.ndarray  # uint8
    edited_full: np.ndarray  # uint8
    crops: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # full-res centre (source, edited, expected) for detail
    measured: dict[str, dict[str, float]] = field(default_factory=dict)

    def features(self, which: str) -> dict[str, float]:
        """`features` of the `reference`, `edited` or `expected` copy, computed once."""
        if which not in self.measured:
            self.measured[which] = features(getattr(self, which))
        return self.measured[which]


@dataclass
class Assessment:
    """What `assess` measured: each asked part, what else changed, and how well made the result is."""

    looks: list[str]  # looks the instruction named without amounts
    recipe: str  # those looks spelled out
    parts: list[Part]
    asks: list[str | None]  # explicit text per part, in the instruction's order
    preservation: float  # 0.4..1: 1 when nothing changed that was not asked for
    kept: list[str]
    quality: float  # 0..10
    flaws: list[str]

    @property
    def success(self) -> float:
        """0..1: how fully the instruction's parts were done."""
        return sum(p.score for p in self.parts) / len(self.parts)

    def findings(self) -> list[str]:
        return [p.finding for p in self.parts] + self.kept + self.flaws


def assess(source: Image.Image, edited: Image.Image, instruction: str, prompt: str) -> Assessment:
    """Measure the edit against what the instruction asks (`prompt`: what the editor was told)."""
    source = source.convert("RGB")
    edited = edited.convert("RGB")
    intent, used = read(instruction), read(prompt)
    targets = [resolve(op, source.size) for op in intent.ops]
    done = [applied(resolve(op, source.size)) for op in used.ops]
    views = _views(source, edited, targets)
    geometry = [op for op in targets if op.name in GEOMETRY]
    misshapen = _misshapen(geometry, source.size, edited.size, views.size)
    parts, asks = [], []  # asks in the order the instruction gave its operations
    if misshapen and not geometry:
        parts.append(Part(0.0, misshapen, None))
    for op in targets:
        if op.name in GEOMETRY:
            again = f" so that the result is {views.size[0]}×{views.size[1]} pixels" if misshapen else ""
            asks.append(describe(op) + (again if op is geometry[-1] else ""))
            if op is geometry[0]:
                parts.append(_geometry(geometry, targets, views, misshapen))
        else:
            parts.append(_assess(op, _used(op, targets, done), views))
            asks.append(parts[-1].ask)
    if intent.unknown or not parts:
        parts.append(_unsupported(intent.unknown or [instruction], views, keep=prompt if not targets else None))
        asks.append(parts[-1].ask)
    preservation, kept = _preservation(targets, views)
    quality, flaws = _quality(targets, views)
    recipe = join([describe(op) for op in targets if op.vague])
    return Assessment(intent.looks, recipe, parts, asks, preservation, kept, quality, flaws)


def review(source: Image.Image, edited: Image.Image, instruction: str, prompt: str) -> str:
    """The critique as canonical thinker text, every number in it measured."""
    measured = assess(source, edited, instruction, prompt)
    asks, quality = measured.asks, measured.quality
    semantic = round(10 * measured.success * measured.preservation, 1)

    lines = [f"The instruction asks: {instruction}"]
    if measured.looks:
        lines.append(f"'{', '.join(measured.looks)}' names a look without amounts; in full it is: {measured.recipe}.")
    lines += [f"- {finding}" for finding in measured.findings()]
    if semantic >= 8 and quality >= 8:
        lines.append(f"Semantic {semantic:g}, quality {quality:g}: the edit does what was asked; I keep the prompt.")
        refined = prompt
    else:
        refined = join([ask for ask in asks if ask]) or prompt
        same = refined.lower() == prompt.lower()
        verdict = "I cannot improve the prompt." if same else "the next prompt states the amounts explicitly."
        lines.append(f"Semantic {semantic:g}, quality {quality:g}: {verdict}")
    return format_critique(semantic, quality, defuse("\n".join(lines)), defuse(refined))


def _views(source: Image.Image, edited: Image.Image, targets: list[Op]) -> Views:
    want = planned_size(source.size, targets)
    scale = max(1.0, max(*source.size, *want) / WORK_SIDE)

    def shrunk(size: tuple[int, int]) -> tuple[int, int]:
        return max(1, round(size[0] / scale)), max(1, round(size[1] / scale))

    small, small_want = source.resize(shrunk(source.size), Image.Resampling.BOX), shrunk(want)

    def run(ops: list[Op], image: Image.Image, size: tuple[int, int] | None = small_want) -> np.ndarray:
        for op in ops:
            with contextlib.suppress(NoRegion):  # nothing to change; the part's own assessment says so
                image = apply(image, replace(op, amount=op.amount / scale) if op.name in SIZED else op)
        return _f(image if size in (None, image.size) else image.resize(size, Image.Resampling.BILINEAR))

    crops = None
    if not any(op.name in GEOMETRY for op in targets) and edited.size == source.size:
        box = _centre(source.size)
        ops = [op for op in targets if op.name not in LOCAL and op.name != "vignette"]
        crops = (_f(source.crop(box)), _f(edited.crop(box)), run(ops, source.crop(box), size=None))
    return Views(
        size=want,
        scale=scale,
        untouched=run([], small),
        edited=_f(edited.resize(small_want, Image.Resampling.BOX)),
        reference=run([op for op in targets if op.name in GEOMETRY], small),
        base=run([op for op in targets if op.name not in LOCAL], small),
        expected=run(targets, small),
        source_full=np.asarray(source),
        edited_full=np.asarray(edited),
        crops=crops,
    )


def _centre(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    w, h = min(width, WORK_SIDE), min(height, WORK_SIDE)
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def _f(image: Image.Image) -> np.ndarray:
    return np.asarray(image, np.float32)


def _used(op: Op, targets: list[Op], done: list[Op]) -> Op | None:
    """The operation of the same kind that the editor was told to do (the n-th of its kind)."""
    nth = [t for t in targets if t.name == op.name].index(op)
    same = [d for d in done if d.name == op.name]
    return same[nth] if nth < len(same) else None


# -- measurements ---------------------------------------------------------------------------------------


def features(x: np.ndarray) -> dict[str, float]:
    """Global measurements; brightness and contrast from the middle half, where a vignette barely reaches."""
    height, width = x.shape[:2]
    middle = x[height // 4 : max(height // 4 + 1, 3 * height // 4), width // 4 : max(width // 4 + 1, 3 * width // 4)]
    luma = middle @ LUMA
    mean = float(luma.mean()) + 1e-6
    high = np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])
    low = np.minimum(np.minimum(x[..., 0], x[..., 1]), x[..., 2])
    chroma = np.where(high > 10, (high - low) / np.maximum(high, 1e-6), 0)
    return {
        "brightness": mean,
        "contrast": float(luma.std()) / mean,
        "saturation": float(chroma.mean()),
        "warmth": float((x[..., 0] - x[..., 2]).mean() / max(float((x[..., 0] + x[..., 2]).mean()), 1e-6)),
        "detail": _detail(x),
    }


def _sepia(x: np.ndarray, reference: np.ndarray) -> float:
    """Share of the way each pixel's chromaticity moved from the reference's toward the sepia tint (vignette-proof)."""
    tint = SEPIA / SEPIA.sum()
    start = reference / (reference.sum(axis=2, keepdims=True) + 1e-6)
    moved = x / (x.sum(axis=2, keepdims=True) + 1e-6) - start
    way = tint - start
    weight = reference @ LUMA
    return float((weight * (moved * way).sum(axis=2)).sum() / ((weight * (way * way).sum(axis=2)).sum() + 1e-6))


def _detail(x: np.ndarray) -> float:
    luma = x @ LUMA
    if min(luma.shape) < 2:
        return 0.0
    edges = np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean()
    return float(edges / (luma.mean() + 1e-6))


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a @ LUMA, b @ LUMA
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-6))


def _vignette(x: np.ndarray, reference: np.ndarray) -> float:
    """How much the corners darkened relative to the centre: fit edited/reference luma ≈ c·(1 − v·r²)."""
    luma, base = x @ LUMA, reference @ LUMA
    usable = (base > 12) & (luma < 250)
    if usable.sum() < 16:
        return 0.0
    slope, intercept = np.polyfit(radial(x.shape[1], x.shape[0])[usable], luma[usable] / base[usable], 1)
    return float(-slope / intercept) if intercept > 1e-3 else 0.0


def _measure(name: str, views: Views) -> tuple[float, float, float]:
    """(reference, edited, expected) values of the feature that shows operation `name`."""
    if name == "vignette":
        return 0.0, _vignette(views.edited, views.reference), _vignette(views.expected, views.reference)
    if name == "sepia":
        return 0.0, _sepia(views.edited, views.reference), _sepia(views.expected, views.reference)
    if name == "invert":
        return 0.0, (1 - _ncc(views.edited, views.reference)) / 2, (1 - _ncc(views.expected, views.reference)) / 2
    if name in ("blur", "sharpen") and views.crops is not None:
        return tuple(_detail(x) for x in views.crops)
    feature = FEATURE_OF[name]
    return tuple(views.features(which)[feature] for which in ("reference", "edited", "expected"))


def _achieved(ratio: float) -> float:
    """Score for achieving `ratio` of the asked effect: full from 75% to 150%, less for too little or too much."""
    if ratio < 0.75:
        return max(0.0, ratio / 0.75)
    if ratio > 1.5:
        return max(0.4, 1 - (ratio - 1.5) / 3)
    return 1.0


# -- one part of the instruction -------------------------------------------------------------------------


def _assess(op: Op, used: Op | None, views: Views) -> Part:
    special = {
        "border": _border,
        "text": _text,
        "recolor": _recolor,
        "keep_color": _keep_color,
        "posterize": _posterize,
        "pixelate": _pixelate,
    }
    if op.name in special:
        return special[op.name](op, used, views)
    reference, got, want = _measure(op.name, views)
    change, asked = got - reference, want - reference
    if abs(asked) < 1e-3 * max(abs(reference), 1e-2):
        return Part(1.0, f"{op.name}: this image leaves no room for the change (nothing to measure)", describe(op))
    ratio = change / asked
    score = _achieved(ratio)
    return Part(score, _finding(op, reference, got, want, ratio), describe(_corrected(op, used, ratio, score)))


def _finding(op: Op, reference: float, got: float, want: float, ratio: float) -> str:
    def pct(value: float) -> str:
        return f"{value / max(abs(reference), 1e-6) * 100:+.0f}%"

    match op.name:
        case "brightness" | "contrast" | "saturation":
            return f"{op.name} changed {pct(got - reference)} (asked for about {pct(want - reference)})"
        case "warmth":
            return f"red-blue balance moved {got - reference:+.3f} (asked for about {want - reference:+.3f})"
        case "grayscale":
            return f"mean saturation is {got:.3f} (source {reference:.3f}; black and white is 0)"
        case "blur" | "sharpen":
            return f"fine detail changed {pct(got - reference)} (a {describe(op)} gives about {pct(want - reference)})"
        case "vignette":
            return f"the corners darkened {got * 100:.0f}% relative to the centre (asked {want * 100:.0f}%)"
    strength = ratio * (op.amount or 1.0)
    return f"{op.name} reached about {strength * 100:.0f}% strength (asked {(op.amount or 1.0) * 100:.0f}%)"


def _corrected(op: Op, used: Op | None, ratio: float, score: float) -> Op:
    """The amount to ask for next: what worked stays; a shortfall or excess scales the amount that was used."""
    explicit = replace(op, vague=False)
    if op.name in ("grayscale", "invert") or used is None or not used.amount:
        return explicit
    if score >= 1.0:
        return replace(explicit, amount=used.amount)
    if ratio <= 0.05:
        return explicit
    amount = used.amount / min(2.5, max(0.4, ratio))
    low, high = LIMITS[op.name]
    digits = 1 if op.name in SIZED else 2
    return replace(explicit, amount=round(min(high, max(low, amount)), digits))


def _changed(image: np.ndarray, against: np.ndarray) -> np.ndarray:
    difference = np.abs(image - against)
    return np.maximum(np.maximum(difference[..., 0], difference[..., 1]), difference[..., 2]) > 30


def _small_box(op: Op, views: Views) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = text_box(views.size, op)
    height, width = views.edited.shape[:2]
    return (
        max(0, int(x0 / views.scale)),
        max(0, int(y0 / views.scale)),
        min(width, int(np.ceil(x1 / views.scale))),
        min(height, int(np.ceil(y1 / views.scale))),
    )


def _text(op: Op, used: Op | None, views: Views) -> Part:
    changed = _changed(views.edited, views.base)
    x0, y0, x1, y1 = _small_box(op, views)
    inside = changed[y0:y1, x0:x1]
    share = float(inside.mean()) if inside.size else 0.0
    outside = (changed.sum() - inside.sum()) / max(1, changed.size - inside.size)
    pixels = views.edited[y0:y1, x0:x1][inside]
    target = np.array(COLORS.get(op.color or "white", (255, 255, 255)), np.float32)
    colored = float((np.linalg.norm(pixels - target, axis=1) < 100).mean()) if len(pixels) else 0.0
    score = min(1.0, share / 0.04) * (1.0 if colored >= 0.1 else 0.6)
    finding = (
        f"text '{op.text}': {share * 100:.0f}% of its {op.where} band changed "
        f"({outside * 100:.1f}% elsewhere), {colored * 100:.0f}% of the changed pixels are {op.color}"
    )
    return Part(score, finding, describe(op))


def _border(op: Op, used: Op | None, views: Views) -> Part:
    x = views.edited_full.astype(np.int16)
    color = np.array(COLORS.get(op.color or "white", (255, 255, 255)), np.int16)
    limit = max(1, min(x.shape[:2]) // 4)
    thickness = []
    for side in (x[:limit], x[::-1][:limit], x[:, :limit].swapaxes(0, 1), x[:, ::-1][:, :limit].swapaxes(0, 1)):
        rows = (np.abs(side - color).max(axis=2) < 40).mean(axis=1) > 0.9
        thickness.append(limit if rows.all() else int(np.argmin(rows)))
    measured, asked = min(thickness), float(op.amount or 1)
    ratio = measured / asked
    score = _achieved(ratio) if measured else 0.0
    finding = f"{op.color} border: {measured} px on its thinnest side (asked {asked:g} px)"
    return Part(score, finding, describe(_corrected(op, used, ratio, score)))


def _recolor(op: Op, used: Op | None, views: Views) -> Part:
    named = f"{op.source_color} {op.where}" if op.where else f"{op.source_color} areas"
    try:
        mask = select(views.base, op.source_color or "red", op.where)
    except NoRegion as exc:
        return Part(0.0, f"there is no {named} to recolor: {exc}", describe(op))
    if mask.mean() < 0.001:
        return Part(0.5, f"there are no {named} in the source to recolor", describe(op))
    share = float(color_mask(hsv(views.edited), op.color or "red")[mask].mean())
    finding = (
        f"{share * 100:.0f}% of the pixels of the {named} ({mask.mean() * 100:.1f}% of the image) are now {op.color}"
    )
    return Part(min(1.0, share / 0.7), finding, describe(op))


def _keep_color(op: Op, used: Op | None, views: Views) -> Part:
    named = f"{op.color} {op.where}" if op.where else f"{op.color} areas"
    base_hsv = hsv(views.base)
    try:
        mask = select(views.base, op.color or "red", op.where, base_hsv)
    except NoRegion as exc:
        return Part(0.0, f"there is no {named} to keep: {exc}", describe(op))
    saturation = hsv(views.edited)[..., 1] / 255
    kept = float(saturation[mask].mean() / max(base_hsv[..., 1][mask].mean() / 255, 1e-6)) if mask.any() else 1.0
    rest = float(saturation[~grow(mask)].mean()) if (~mask).any() else 0.0
    score = min(1.0, kept / 0.7) * max(0.0, 1 - max(0.0, rest - 0.05) * 8)
    finding = (
        f"the {named} kept {kept * 100:.0f}% of the saturation; the rest has mean saturation {rest:.3f} (gray is 0)"
    )
    return Part(score, finding, describe(op))


def _posterize(op: Op, used: Op | None, views: Views) -> Part:
    step = max(1, int(views.scale))
    sample = views.edited_full[::step, ::step].reshape(-1, 3)
    levels = max(int((np.bincount(sample[:, c], minlength=256) > 0.002 * len(sample)).sum()) for c in range(3))
    asked = round(op.amount or 4)
    score = 1.0 if levels <= asked + 1 else max(0.0, 1 - (levels - asked - 1) / 24)
    return Part(score, f"posterize: {levels} levels per channel (asked {asked})", describe(op))


def _blockiness(x: np.ndarray) -> float:
    """Average width of runs of identical pixels along rows, from the share of equal neighbours."""
    box = _centre((x.shape[1], x.shape[0]))
    crop = x[box[1] : box[3], box[0] : box[2]]
    if crop.shape[1] < 2:
        return 1.0
    equal = float((crop[:, 1:] == crop[:, :-1]).all(axis=2).mean())
    return 1 / max(1 - equal, 1 / crop.shape[1])


def _pixelate(op: Op, used: Op | None, views: Views) -> Part:
    measured, before, asked = _blockiness(views.edited_full), _blockiness(views.source_full), float(op.amount or 2)
    if before >= 0.75 * asked:
        return Part(
            1.0,
            f"pixelate: the source is already made of flat blocks ({before:.0f} px); nothing to measure",
            describe(op),
        )
    ratio = measured / asked
    score = _achieved(ratio)
    finding = f"pixelate: blocks about {measured:.0f} px wide (asked {asked:g} px; source {before:.0f})"
    return Part(score, finding, describe(_corrected(op, used, ratio, score)))


def _misshapen(geometry: list[Op], source: tuple[int, int], got: tuple[int, int], want: tuple[int, int]) -> str | None:
    """What is wrong with the result's shape, in numbers; None when it has the asked aspect ratio (and the asked
    size, when a resize was asked: other editors may return a rotation or a crop at their own resolution)."""
    (gw, gh), (ww, wh) = got, want
    slack = 0.03 + 1 / min(gw, gh, ww, wh)  # a pixel of rounding on a small side
    stretched = abs(gw * wh / (gh * ww) - 1) > slack
    resized = any(op.name == "resize" for op in geometry) and max(abs(gw / ww - 1), abs(gh / wh - 1)) > slack
    if not (stretched or resized):
        return None
    problem = "the picture is squashed or stretched" if stretched else "the wrong size"
    if not geometry:
        return f"the result is {gw}×{gh}, but nothing asked changes the source's {source[0]}×{source[1]}: {problem}"
    asked = join([describe(op) for op in geometry])
    return f"{asked} turns the {source[0]}×{source[1]} source into {ww}×{wh}, but the result is {gw}×{gh}: {problem}"


def _geometry(geometry: list[Op], targets: list[Op], views: Views, misshapen: str | None) -> Part:
    """The asked shape first (a wrong one scores at most 0.2), then the layout against the expected pixels."""
    match = abs if any(op.name == "invert" for op in targets) else float
    got, untouched = match(_ncc(views.edited, views.expected)), match(_ncc(views.edited, views.untouched))
    score = min(1.0, max(0.0, (got - 0.5) / 0.4))
    if misshapen:
        return Part(0.2 * score, f"{misshapen}; squeezed into the asked frame its layout matches at {got:.2f}", None)
    (height, width), (asked_width, asked_height) = views.edited_full.shape[:2], views.size
    shape = "as asked" if (width, height) == views.size else f"the shape of the asked {asked_width}×{asked_height}"
    asked = f"{join([describe(op) for op in geometry])}: the result is {width}×{height}, {shape}"
    if _ncc(views.reference, views.untouched) > 0.98:
        return Part(1.0, f"{asked}, and the source looks the same after it, so the layout tells nothing apart", None)
    if untouched > got:
        score = min(score, 0.2)
    finding = f"{asked}; the layout matches the expected result at {got:.2f} (the untouched source at {untouched:.2f})"
    return Part(score, finding, None)


def _unsupported(pieces: list[str], views: Views, keep: str | None) -> Part:
    """The parts no operation covers; `keep` is the prompt to hand back when nothing else was asked."""
    named = ", ".join(f"'{piece}'" for piece in pieces)
    ask = keep or join(pieces)
    share = float(_changed(views.edited, views.expected).mean())
    if share > 0.03:
        return Part(
            0.5,
            f"{named}: {share * 100:.0f}% of the image changed beyond the measurable operations, "
            f"which may be it; this critic can only check {REPERTOIRE}",
            ask,
        )
    return Part(
        0.0,
        f"{named} was not done ({share * 100:.1f}% of the image changed). The offline editor cannot do "
        f"this: it only does {REPERTOIRE}; {GENERATIVE} can",
        ask,
    )


# -- preservation and quality ----------------------------------------------------------------------------


def _preservation(targets: list[Op], views: Views) -> tuple[float, list[str]]:
    """(factor on the semantic score, findings): changes nobody asked for."""
    touched = set()
    for op in targets:
        touched |= {FEATURE_OF.get(op.name, op.name)} | SIDE_EFFECTS.get(op.name, set())
    if any(op.name in ("keep_color", "invert") for op in targets):
        touched |= {"brightness", "contrast", "saturation", "warmth", "detail"}
    got, want = views.features("edited"), views.features("expected")
    penalty, findings = 0.0, []
    for name in ("brightness", "contrast", "saturation", "warmth", "detail"):
        if name in touched:
            continue
        drift = got[name] - want[name] if name == "warmth" else (got[name] - want[name]) / max(want[name], 1e-3)
        limit = 0.04 if name == "warmth" else 0.12
        if abs(drift) > limit:
            penalty += min(0.3, abs(drift) - limit + 0.1)
            findings.append(
                f"{name} {'rose' if drift > 0 else 'fell'} ({drift:+.2f}) though the instruction did not ask for it"
            )
    if targets and all(op.name in LOCAL for op in targets) and not any(op.name == "keep_color" for op in targets):
        changed = _changed(views.edited, views.expected) & ~grow(grow(_changed(views.expected, views.reference)))
        share = float(changed.mean())
        if share > 0.01:
            penalty += min(0.5, share * 3)
        findings.append(f"outside the edited region {share * 100:.1f}% of the pixels changed")
    return max(0.4, 1 - penalty), findings


def _quality(targets: list[Op], views: Views) -> tuple[float, list[str]]:
    """(quality score, findings): clipping, banding and detail the edit lost or added beyond what was asked."""
    names = {op.name for op in targets}
    penalty, findings = 0.0, []

    drawn = _changed(views.expected, views.base)  # borders and text may be pure black or white on purpose

    def clipped(x: np.ndarray) -> float:
        luma = x @ LUMA
        return float((((luma >= 250) | (luma <= 4)) & ~drawn).mean())

    extra = clipped(views.edited) - clipped(views.reference)
    if extra > 0.03:
        penalty += min(4.0, (extra - 0.03) * 15)
        findings.append(f"{extra * 100:.0f}% more of the image is clipped to pure black or white (lost detail)")
    if not names & {"posterize", "pixelate"}:
        step = max(1, int(views.scale))
        before = len(np.unique((views.source_full[::step, ::step] @ LUMA).astype(np.uint8)))
        after = len(np.unique((views.edited_full[::step, ::step] @ LUMA).astype(np.uint8)))
        if after < 0.5 * before:
            penalty += min(3.0, (0.5 - after / before) * 8 + 0.5)
            findings.append(f"banding: {after} gray levels left of the source's {before}")
    if not names & {"blur", "pixelate", "sharpen"}:
        ratio = _detail(views.edited) / max(_detail(views.expected), 1e-6)
        if ratio < 0.7:
            penalty += min(3.0, (0.7 - ratio) * 10)
            findings.append(f"the image lost {(1 - ratio) * 100:.0f}% of its fine detail")
        elif ratio > 1.6:
            penalty += min(2.0, (ratio - 1.6) * 3)
            findings.append(f"the image is {(ratio - 1) * 100:.0f}% harsher or noisier in fine detail than asked")
    return round(max(0.0, 10 - penalty), 1), findings
