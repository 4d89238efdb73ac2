"""Offline critic: measures the edit against the source and the intent of the ORIGINAL instruction.

It reads the instruction with `thinkedit.instructions.read` (the intent; never the editor's note or the pixels
the editor chose) and measures:

- whole-image operations against what the source would look like with them, built on a small copy: brightness,
  contrast, saturation, white balance, sepia, vignette, detail, geometry, border pixels, the text band;
- operations on a region ("the sky", "the top half") or a colored thing ("the red cup"), from the source and the
  result alone (`thinkedit.changes`): how much of the named area took the change, how far the change spread
  beyond it (outside the named place; for a colored thing, onto pixels whose source is another surface than the
  middle of what changed on it: another hue, grainier), specks inside it, new hard edges along its border; a look
  too faint to see is asked for more strongly;
- quality: clipping, banding, detail lost or added, blotchy changes, seams, skin tones flattened into steps.

A part counts as done within `TOLERANCE` of the asked change; the reasoning states every number, the tolerance
and how each corrected amount was derived, and keeps the prompt only when every part is within it. Given a
person's feedback ("less sepia", "keep the vignette") its refined prompt follows that instead. It speaks the
same `<think>/<score>/<answer>` text as EditThinker-8B, streamed in chunks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from .. import changes, regions
from ..backend import BackendSpec, OnToken
from ..changes import VISIBLE, difference, shift
from ..config import Settings
from ..critique import Critique, defuse, format_critique, parse_critique, parse_polish
from ..editors.classic import GENERATIVE, LUMA, SEPIA, apply, planned_size, radial, text_box
from ..instructions import (
    COLORS,
    GEOMETRY,
    OPERATIONS,
    PLACES,
    REPERTOIRE,
    SIZED,
    WHERE,
    Op,
    applied,
    follow,
    join,
    phrase,
    read,
    read_feedback,
    resolve,
)
from ..regions import NEUTRAL, NoRegion, fill_holes, grow, hsv, label, mask, membership, texture

WORK_SIDE = 256  # global measurements run on copies this size; detail on a full-resolution crop this size
# A measured change counts as the asked one from 80% to 125% of it: closer than a person can tell two amounts
# apart side by side, and wide enough that an editor's rounding or clipping does not send the loop round again.
TOLERANCE = (0.8, 1.25)
UNSEEN = 0.7  # the most a look scores while a quarter of what it names has not visibly changed
GUESSED = ("the background", "the foreground")  # regions whose rule a person would often draw otherwise
SPLASH = 0.005  # a patch of spill this share of the image (35×35 pixels of a 600×400 photo) is a blot seen at a glance
AMBIGUOUS = 0.7  # the most a recolor of one thing scores when other things of its color could be the one meant
MOST = 2.5  # a corrected amount is at most this many times (or at least 1/this of) the amount that was used
FEATURES = ("brightness", "contrast", "saturation", "warmth", "detail")
FRAMES = {f"the {side} {part}" for side in ("top", "bottom", "left", "right") for part in ("half", "third", "quarter")}


@dataclass
class Part:
    score: float  # 0..1: how fully this part of the instruction was done
    finding: str  # one sentence with the measured numbers
    ask: str | None  # explicit text for this part in the refined prompt
    derivation: str | None = None  # how a corrected amount was derived from the measurement
    within: bool = True  # the measurement is within the tolerance (or there is no amount to correct)
    label: str = ""  # what the part is about, for the verdict ("sepia", "contrast in the sky")


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
        feedback: str | None = None,
        on_token: OnToken | None = None,
        region: str | None = None,
        mask: Image.Image | None = None,
    ) -> Critique:
        text = review(source, edited, instruction, prompt, feedback, region, mask)
        stream(text, on_token)
        return parse_critique(text)

    def polish(self, source: Image.Image, instruction: str, *, on_token: OnToken | None = None) -> str:
        plan = read(instruction)
        asks = [phrase(resolve(op, source.size)) for op in plan.ops] + [defuse(part) for part in plan.unknown]
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
    base: np.ndarray  # the source with every asked operation that acts on the whole image
    expected: np.ndarray  # the source with every asked operation
    source_full: np.ndarray  # uint8
    edited_full: np.ndarray  # uint8
    crops: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # full-res centre (source, edited, expected) for detail
    sampled: tuple[np.ndarray, np.ndarray] | None  # (source, edited) at the small size by picking pixels, not
    #                                                averaging them: pixel noise survives (only local operations)
    measured: dict[tuple[str, str | None], dict[str, float]] = field(default_factory=dict)
    regions: dict[str, np.ndarray | str] = field(default_factory=dict)
    texture: np.ndarray | None = None  # `grain()`
    inside: np.ndarray | None = None  # with a mask, the small copies' pixels inside it: what a region can name

    def features(self, which: str, region: str | None = None) -> dict[str, float]:
        """`features` of the `reference`, `edited` or `expected` copy (inside `region`), computed once."""
        if (which, region) not in self.measured:
            inside = self.region(region) if region else None
            self.measured[which, region] = features(getattr(self, which), inside)
        return self.measured[which, region]

    def grain(self) -> np.ndarray:
        """`regions.texture` of the source at the small copies' size, measured once (at full resolution, unless
        the asked geometry moved the pixels: then on `base`)."""
        if self.texture is None:
            unmoved = np.array_equal(self.reference, self.untouched)
            self.texture = texture(self.source_full if unmoved else self.base, self.base.shape[:2])
        return self.texture

    def region(self, region: str) -> np.ndarray:
        """The pixels of the small copies that a region names, by its rule on the source (`NoRegion` if none)."""
        if region not in self.regions:
            try:
                self.regions[region] = (mask(self.reference, region) >= 0.5) & self.within()
            except NoRegion as exc:
                self.regions[region] = str(exc)
        found = self.regions[region]
        if isinstance(found, str):
            raise NoRegion(found)
        return found

    def within(self) -> np.ndarray | bool:
        return True if self.inside is None else self.inside


@dataclass
class Assessment:
    """What `assess` measured: each asked part, what else changed, and how well made the result is."""

    looks: list[str]  # looks the instruction named without amounts
    recipe: str  # those looks spelled out
    parts: list[Part]
    asks: list[str | None]  # explicit text per part, in the instruction's order
    preservation: float  # 0.2..1: 1 when nothing changed that was not asked for
    kept: list[str]
    quality: float  # 0..10
    flaws: list[str]
    unchanged: bool  # the result is the source (in the asked frame) though the instruction asks for a change
    cap: float = 1.0  # the most `success` may be (a look too faint to see)

    @property
    def success(self) -> float:
        """0..1: how fully the instruction's parts were done."""
        return min(self.cap, sum(p.score for p in self.parts) / len(self.parts))

    def findings(self) -> list[str]:
        return [p.finding for p in self.parts] + self.kept + self.flaws


def assess(
    source: Image.Image, edited: Image.Image, instruction: str, prompt: str, mask: Image.Image | None = None
) -> Assessment:
    """Measure the edit against what the instruction asks (`prompt`: what the editor was told); with a `mask` (L,
    white may change) the instruction asks for its operations inside the mask only."""
    source = source.convert("RGB")
    edited = edited.convert("RGB")
    intent, used = read(instruction), read(prompt)
    targets = [resolve(op, source.size) for op in intent.ops]
    done = [applied(resolve(op, source.size)) for op in used.ops]
    views = _views(source, edited, targets, mask)
    geometry = [op for op in targets if op.name in GEOMETRY]
    misshapen = _misshapen(geometry, source.size, edited.size, views.size)
    parts, asks = ([Part(0.0, misshapen, None)] if misshapen and not geometry else []), []
    for op in targets:
        if op.name in GEOMETRY:
            again = f" so that the result is {views.size[0]}×{views.size[1]} pixels" if misshapen else ""
            asks.append(phrase(op) + (again if op is geometry[-1] else ""))
            if op is geometry[0]:
                parts.append(_geometry_part(geometry, targets, views, misshapen))
        else:
            parts.append(_assess(op, _used(op, targets, done), views))
            where = f" in {op.region}" if op.region else ""
            parts[-1].label = f"{op.region} made {op.color}" if op.name == "recolor" else f"{op.name}{where}"
            asks.append(parts[-1].ask)
    seen = _seen(targets, views)
    if seen is not None and not seen.within:
        parts.append(seen)
        asks = _louder(targets, done, parts, asks, seen)
    if intent.unknown or not parts:
        parts.append(_unsupported(intent.unknown or [instruction], views, keep=prompt if not targets else None))
        asks.append(parts[-1].ask)
    preservation, kept = _preservation(targets, views)
    quality, flaws = _quality(targets, views)
    unchanged = _unchanged(targets, views, sum(p.score for p in parts) / len(parts))
    if unchanged:
        flaws.append("the result is the source, unchanged: there is no edit whose quality could be good (at most 5)")
        quality = min(quality, 5.0)
    recipe = join([phrase(op) for op in targets if op.vague])
    cap = UNSEEN if seen is not None and not seen.within else 1.0
    guessed = sorted({op.region for op in targets if op.region in GUESSED})
    if guessed:  # the rule sees colors, not objects: an edit of it can be reported, not confirmed
        cap = min(cap, AMBIGUOUS)
        kept.append(
            f"{join(guessed)} is found by a rule that sees colors, not objects; I cannot confirm it holds all of "
            f"{join(guessed)} and nothing else, so this scores at most {AMBIGUOUS * 10:g}"
        )
    return Assessment(intent.looks, recipe, parts, asks, preservation, kept, quality, flaws, unchanged, cap)


def review(
    source: Image.Image,
    edited: Image.Image,
    instruction: str,
    prompt: str,
    feedback: str | None = None,
    region: str | None = None,
    mask: Image.Image | None = None,
) -> str:
    """The critique as canonical thinker text, every number in it measured (`region`, `mask`: the masked region in
    words and pixels: what the instruction asks is measured inside it)."""
    measured = assess(source, edited, instruction, prompt, mask)
    quality = measured.quality
    semantic = round(10 * measured.success * measured.preservation, 1)
    lines = [f"The instruction asks: {instruction}"] + ([region] if region else [])
    if measured.looks:
        lines.append(f"'{', '.join(measured.looks)}' names a look without amounts; in full it is: {measured.recipe}.")
    lines += [f"- {finding}" for finding in measured.findings()]
    short = [p for p in measured.parts if not p.within]
    lines += [f"- {p.derivation}" for p in short if p.derivation]
    scores = f"Semantic {semantic:g}, quality {quality:g}"
    low, high = (round(bound * 100) for bound in TOLERANCE)
    if feedback is not None:
        refined, answered = answer(feedback, prompt, source.size)
        follows = "the next prompt follows your feedback" if refined != prompt else "the prompt stays as it is"
        lines += [*answered, f"{scores}: {follows}."]
    elif measured.unchanged:
        refined = join([ask for ask in measured.asks if ask]) or prompt
        lines.append(f"{scores}: nothing was done; the next prompt states every operation with its amount.")
    elif not short and semantic >= 8 and quality >= 8:
        rest = "nothing else changed that matters" if measured.preservation == 1 else "what else changed is small"
        lines.append(
            f"{scores}: every part is within my tolerance ({low}–{high}% of the asked change) and {rest}; I keep the "
            "prompt."
        )
        refined = prompt
    else:
        refined = join([ask for ask in measured.asks if ask]) or prompt
        off = f"; not done yet: {join([p.label for p in short])}" if short else ""
        same = refined.lower() == prompt.lower()
        verdict = "I cannot improve the prompt." if same else "the next prompt asks for amounts that reach the target."
        lines.append(f"{scores}{off} (a part is done within {low}–{high}% of its asked change): {verdict}")
    return format_critique(semantic, quality, defuse("\n".join(lines)), defuse(refined))


def _views(source: Image.Image, edited: Image.Image, targets: list[Op], mask: Image.Image | None = None) -> Views:
    """The copies a review measures; with a mask the asked operations land inside it only (the frame is kept)."""
    want = planned_size(source.size, targets)
    mask = mask.convert("L").resize(source.size) if mask is not None and want == source.size else None
    scale = max(1.0, max(*source.size, *want) / WORK_SIDE)

    def shrunk(size: tuple[int, int]) -> tuple[int, int]:
        return max(1, round(size[0] / scale)), max(1, round(size[1] / scale))

    small, small_want = source.resize(shrunk(source.size), Image.Resampling.BOX), shrunk(want)

    def run(
        ops: list[Op], image: Image.Image, size: tuple[int, int] | None = small_want, fence: Image.Image | None = None
    ) -> np.ndarray:
        before = image
        for op in ops:
            with contextlib.suppress(NoRegion):  # nothing to change; the part's own assessment says so
                image = apply(image, replace(op, amount=op.amount / scale) if op.name in SIZED else op)
        done = _array(image if size in (None, image.size) else image.resize(size, Image.Resampling.BILINEAR))
        fence = fence or (mask.resize(small.size, Image.Resampling.BOX) if mask is not None else None)
        if fence is None or not ops:
            return done
        weight = _array(fence)[..., None] / 255  # the mask keeps the frame: `before` is of `done`'s size
        return _array(before) * (1 - weight) + done * weight

    crops = sampled = None
    if all(_local(op) for op in targets) and edited.size == source.size:
        sampled = (_array(source.resize(small_want, Image.Resampling.NEAREST)),
                   _array(edited.resize(small_want, Image.Resampling.NEAREST)))  # fmt: skip
    if not any(op.name in GEOMETRY for op in targets) and edited.size == source.size:
        box = _centre(source.size)
        ops = [op for op in targets if not _local(op) and op.name != "vignette"]
        fence = mask.crop(box) if mask is not None else None
        crops = (_array(source.crop(box)), _array(edited.crop(box)), run(ops, source.crop(box), None, fence))
    return Views(
        size=want,
        scale=scale,
        untouched=run([], small),
        edited=_array(edited.resize(small_want, Image.Resampling.BOX)),
        reference=run([op for op in targets if op.name in GEOMETRY], small),
        base=run([op for op in targets if not _local(op)], small),
        expected=run(targets, small),
        source_full=np.asarray(source),
        edited_full=np.asarray(edited),
        crops=crops,
        sampled=sampled,
        inside=None if mask is None else np.asarray(mask.resize(small.size, Image.Resampling.BOX)) >= 128,
    )


def _local(op: Op) -> bool:
    """Acts on a part of the picture: a region, a colored thing, a border or text."""
    return bool(op.region) or OPERATIONS[op.name].kind in ("drawn", "color")


def _centre(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    w, h = min(width, WORK_SIDE), min(height, WORK_SIDE)
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, np.float32)


def _used(op: Op, targets: list[Op], done: list[Op]) -> Op | None:
    """The operation of the same kind that the editor was told to do (the n-th of its kind)."""
    nth = [t for t in targets if t.name == op.name].index(op)
    same = [d for d in done if d.name == op.name]
    return same[nth] if nth < len(same) else None


def _seen(targets: list[Op], views: Views) -> Part | None:
    """A look on a region ("make the sky more dramatic") is asked to be seen all over it: a part that fails when a
    quarter of its pixels moved by less than `VISIBLE`; None when no look was asked for a region."""
    vague = [op for op in targets if op.vague and op.region]  # a whole-image look is its recipe
    if not vague:
        return None
    region = vague[0].region
    try:
        inside = views.region(region) if region else np.ones(views.reference.shape[:2], bool)
    except NoRegion:
        return None
    if not inside.any() or views.edited.shape != views.reference.shape:
        return None
    quarter = float(np.percentile(shift(views.edited, views.reference)[inside], 25))
    place = region or "the image"
    if quarter >= VISIBLE:
        return Part(1.0, f"the look shows all over {place}", None)
    needed = VISIBLE / max(quarter, 0.1)
    factor = min(MOST, max(TOLERANCE[1], needed))  # a step of at least the tolerance, or it would read as the same
    finding = (
        f"the look is too faint: a quarter of {place} moved by {quarter:.1f} levels or less ({VISIBLE:g} is about "
        f"what a glance notices), so this scores at most {UNSEEN * 10:g}"
    )
    bounds = f", at most {MOST:g}" if needed > MOST else f", at least {TOLERANCE[1]:g}" if needed < TOLERANCE[1] else ""
    derivation = f"the look: its amounts ×{factor:g} ({VISIBLE:g} / {quarter:.1f} = {needed:.2f}{bounds}) to be seen"
    return Part(quarter / VISIBLE, finding, None, derivation, within=False, label="the look's visibility")


def _louder(
    targets: list[Op], done: list[Op], parts: list[Part], asks: list[str | None], seen: Part
) -> list[str | None]:
    """The asks with a faint look's amounts scaled up by the factor `_seen` derived, once its parts reach the
    recipe (before that, reaching the recipe comes first)."""
    looks = [i for i, op in enumerate(targets) if op.vague]
    if any(not parts[i].within for i in looks) or any(op.name in GEOMETRY for op in targets):
        seen.derivation = None  # the recipe's own amounts are asked for first
        return asks
    factor = float(seen.derivation.split("×")[1].split()[0]) if seen.derivation else 1.0
    louder = list(asks)
    for i in looks:
        used = _used(targets[i], targets, done)
        if used is not None and used.amount:
            louder[i] = phrase(replace(used, amount=_clamp(used.name, used.amount * factor), vague=False))
    return louder


def _clamp(name: str, amount: float) -> float:
    low, high = OPERATIONS[name].limits
    return round(min(high, max(low, amount)), 3)


# -- measurements ---------------------------------------------------------------------------------------


def features(x: np.ndarray, inside: np.ndarray | None = None) -> dict[str, float]:
    """Global measurements, or inside a region; brightness and contrast of the whole image from its middle half,
    where a vignette barely reaches."""
    height, width = x.shape[:2]
    if inside is None:
        middle = x[
            height // 4 : max(height // 4 + 1, 3 * height // 4), width // 4 : max(width // 4 + 1, 3 * width // 4)
        ]
        luma, pixels = middle.reshape(-1, 3) @ LUMA, x.reshape(-1, 3)
    else:
        pixels = x[inside] if inside.any() else x.reshape(-1, 3)
        luma = pixels @ LUMA
    mean = float(luma.mean()) + 1e-6
    high, low = pixels.max(axis=1), pixels.min(axis=1)
    chroma = np.where(high > 10, (high - low) / np.maximum(high, 1e-6), 0)
    warmth = float((pixels[:, 0] - pixels[:, 2]).mean() / max(float((pixels[:, 0] + pixels[:, 2]).mean()), 1e-6))
    return {
        "brightness": mean,
        "contrast": float(luma.std()) / mean,
        "saturation": float(chroma.mean()),
        "warmth": warmth,
        "detail": _detail(x, inside),
    }


def _sepia(x: np.ndarray, reference: np.ndarray, inside: np.ndarray | None = None) -> float:
    """Share of the way each pixel's chromaticity moved from the reference's toward the sepia tint (vignette-proof)."""
    tint = SEPIA / SEPIA.sum()
    start = reference / (reference.sum(axis=2, keepdims=True) + 1e-6)
    moved = x / (x.sum(axis=2, keepdims=True) + 1e-6) - start
    way = tint - start
    weight = (reference @ LUMA) * (1.0 if inside is None else inside)
    return float((weight * (moved * way).sum(axis=2)).sum() / ((weight * (way * way).sum(axis=2)).sum() + 1e-6))


def _detail(x: np.ndarray, inside: np.ndarray | None = None) -> float:
    luma = x @ LUMA
    if min(luma.shape) < 2:
        return 0.0
    down, across = np.abs(np.diff(luma, axis=0)), np.abs(np.diff(luma, axis=1))
    if inside is not None:
        rows, columns = inside[1:] & inside[:-1], inside[:, 1:] & inside[:, :-1]
        if not rows.any() or not columns.any():
            return 0.0
        return float((down[rows].mean() + across[columns].mean()) / (luma[inside].mean() + 1e-6))
    return float((down.mean() + across.mean()) / (luma.mean() + 1e-6))


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a @ LUMA, b @ LUMA
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-6))


def _vignette(x: np.ndarray, reference: np.ndarray, inside: np.ndarray | None = None) -> float:
    """How much the corners darkened relative to the centre: fit edited/reference luma ≈ c·(1 − v·r²)."""
    luma, base = x @ LUMA, reference @ LUMA
    usable = (base > 12) & (luma < 250) & (True if inside is None else inside)  # not too dark to divide, not clipped
    if usable.sum() < 16:
        return 0.0
    slope, intercept = np.polyfit(radial(x.shape[1], x.shape[0])[usable], luma[usable] / base[usable], 1)
    return float(-slope / intercept) if intercept > 1e-3 else 0.0


def _measure(op: Op, views: Views) -> tuple[float, float, float]:
    """(reference, edited, expected) values of the measurement that shows operation `op` (inside its region)."""
    inside = views.region(op.region) if op.region else None
    if op.name == "vignette":
        return 0.0, _vignette(views.edited, views.reference, inside), _vignette(views.expected, views.reference, inside)
    if op.name == "sepia":
        return 0.0, _sepia(views.edited, views.reference, inside), _sepia(views.expected, views.reference, inside)
    if op.name == "invert":
        return 0.0, (1 - _ncc(views.edited, views.reference)) / 2, (1 - _ncc(views.expected, views.reference)) / 2
    if op.name in ("blur", "sharpen") and views.crops is not None and inside is None:
        return tuple(_detail(x) for x in views.crops)
    feature = OPERATIONS[op.name].feature
    return tuple(views.features(which, op.region)[feature] for which in ("reference", "edited", "expected"))


def _achieved(ratio: float) -> float:
    """Score for reaching `ratio` of the asked change: full within `TOLERANCE`, in proportion below it, slowly
    less above it (too much is a smaller fault than too little, down to 0.4)."""
    low, high = TOLERANCE
    if ratio < low:
        return max(0.0, ratio / low)
    if ratio > high:
        return max(0.4, 1 - (ratio - high) / 3)
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
    try:
        reference, got, want = _measure(op, views)
    except NoRegion as exc:
        return Part(0.0, f"{phrase(op)}: not done, since {exc}", phrase(op), within=True)
    change, asked = got - reference, want - reference
    if abs(asked) < 1e-3 * max(abs(reference), 1e-2):
        return Part(1.0, f"{op.name}: this image leaves no room for the change (nothing to measure)", phrase(op))
    ratio = change / asked
    score = _achieved(ratio)
    corrected, derivation = _corrected(op, used, ratio, score)
    return Part(score, _finding(op, reference, got, want, ratio), phrase(corrected), derivation, score >= 1.0)


def _finding(op: Op, reference: float, got: float, want: float, ratio: float) -> str:
    where = f" in {op.region}" if op.region else ""

    def pct(value: float) -> str:
        return f"{value / max(abs(reference), 1e-6) * 100:+.0f}%"

    match op.name:
        case "brightness" | "contrast" | "saturation":
            return f"{op.name}{where} changed {pct(got - reference)} (asked for about {pct(want - reference)})"
        case "warmth":
            return f"red-blue balance{where} moved {got - reference:+.3f} (asked for about {want - reference:+.3f})"
        case "grayscale":
            return f"mean saturation{where} is {got:.3f} (source {reference:.3f}; black and white is 0)"
        case "blur" | "sharpen":
            return f"fine detail{where} changed {pct(got - reference)} (a {phrase(op)} gives about {pct(want - reference)})"
        case "vignette":
            return f"the corners{where} darkened {got * 100:.0f}% relative to the centre (asked {want * 100:.0f}%)"
    strength = ratio * (op.amount or 1.0)
    return f"{op.name}{where} reached about {strength * 100:.0f}% strength (asked {(op.amount or 1.0) * 100:.0f}%)"


def _corrected(op: Op, used: Op | None, ratio: float, score: float) -> tuple[Op, str | None]:
    """The amount to ask for next, and how it was derived: what worked stays; a shortfall or excess divides the
    amount that was used by the share of the asked change it reached (at most `MOST` times more or less)."""
    explicit = replace(op, vague=False)
    if op.name in ("grayscale", "invert") or used is None or not used.amount:
        return explicit, None
    if score >= 1.0:
        return replace(explicit, amount=used.amount), None
    if ratio <= 0.05:  # under 5% of the change: nothing to scale from
        return explicit, f"{op.name}: nothing of it is measurable, so I ask for the full amount again"
    amount = used.amount / min(MOST, max(1 / MOST, ratio))
    low, high = OPERATIONS[op.name].limits
    digits = 1 if op.name in SIZED else 2
    fixed = replace(explicit, amount=round(min(high, max(low, amount)), digits))
    capped = "" if 1 / MOST <= ratio <= MOST else f" (at most {MOST:g}× the amount used)"
    limited = "" if low <= amount <= high else f" (limited to {_amount(fixed)}, its range)"
    derivation = (
        f"{op.name}: the prompt's {_amount(used)} reached {ratio * 100:.0f}% of the asked change, so "
        f"{_amount(used)} / {ratio:.2f} = {_amount(replace(op, amount=amount))}{capped}{limited}"
    )
    return fixed, derivation


def _amount(op: Op) -> str:
    return f"{op.amount:g} px" if op.name in SIZED else f"{(op.amount or 0) * 100:.0f}%"


def _small_box(op: Op, views: Views) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = text_box(views.size, op)
    height, width = views.edited.shape[:2]
    return (
        max(0, int(x0 / views.scale)),
        max(0, int(y0 / views.scale)),
        min(width, int(np.ceil(x1 / views.scale))),
        min(height, int(np.ceil(y1 / views.scale))),
    )


# Text covers about a tenth of its band's pixels (strokes, not boxes); a band 4% changed already reads as text.
TEXT_INK = 0.04


def _text(op: Op, used: Op | None, views: Views) -> Part:
    changed = changes.changed(views.edited, views.base)
    x0, y0, x1, y1 = _small_box(op, views)
    inside = changed[y0:y1, x0:x1]
    share = float(inside.mean()) if inside.size else 0.0
    outside = (changed.sum() - inside.sum()) / max(1, changed.size - inside.size)
    pixels = views.edited[y0:y1, x0:x1][inside]
    target = np.array(COLORS.get(op.color or "white", (255, 255, 255)), np.float32)
    # a changed pixel within 100 (of 441) of the asked color is of it; the outline is another color and covers most
    # of small text, so a tenth of the changed pixels in the color is enough, and none of it costs 40%
    colored = float((np.linalg.norm(pixels - target, axis=1) < 100).mean()) if len(pixels) else 0.0
    score = min(1.0, share / TEXT_INK) * (1.0 if colored >= 0.1 else 0.6)
    finding = (
        f"text '{op.text}': {share * 100:.0f}% of its {op.where} band changed "
        f"({outside * 100:.1f}% elsewhere), {colored * 100:.0f}% of the changed pixels are {op.color}"
    )
    return Part(score, finding, phrase(op))


def _border(op: Op, used: Op | None, views: Views) -> Part:
    x = views.edited_full.astype(np.int16)
    color = np.array(COLORS.get(op.color or "white", (255, 255, 255)), np.int16)
    limit = max(1, min(x.shape[:2]) // 4)
    thickness = []
    for side in (x[:limit], x[::-1][:limit], x[:, :limit].swapaxes(0, 1), x[:, ::-1][:, :limit].swapaxes(0, 1)):
        rows = (np.abs(side - color).max(axis=2) < 40).mean(
            axis=1
        ) > 0.9  # 40 levels of JPEG; 10% of a row may be a corner
        thickness.append(limit if rows.all() else int(np.argmin(rows)))
    measured, asked = min(thickness), float(op.amount or 1)
    ratio = measured / asked
    score = _achieved(ratio) if measured else 0.0
    finding = f"{op.color} border: {measured} px on its thinnest side (asked {asked:g} px)"
    corrected, derivation = _corrected(op, used, ratio, score)
    return Part(score, finding, phrase(corrected), derivation, score >= 1.0)


@dataclass
class Named:
    """What a region's words name in the source, as the critic finds it itself."""

    found: np.ndarray  # the named pixels
    allowed: np.ndarray  # the pixels whose change is no spill: the named ones, of the named color, what they enclose
    how: str  # how it was found, with its size
    one: bool  # one thing ("the red cup"): a change split over several places is spill too
    color: str | None = None  # the color it is named by


def named(region: str, views: Views) -> Named:
    """What a region's words name (`_named`), inside the mask when there is one."""
    found = _named(region, views)
    if views.inside is None:
        return found
    if not (found.found & views.inside).any():
        raise NoRegion(f"{region} lies outside the mask")
    return replace(found, found=found.found & views.inside)


def _named(region: str, views: Views) -> Named:
    """Find what a region's words name: a place by its rule; a colored thing as the largest connected region of
    pixels fully of the color (every such region of at least an eighth of it, for a plural); the color's areas as
    every pixel of it. Changes to pixels at least half of the named color, or enclosed by them (a cup's highlight),
    are no spill. `NoRegion` when nothing fits."""
    if region in PLACES:
        found = views.region(region)
        if not found.any():
            raise NoRegion(f"{region} is empty in this picture")
        return Named(found, grow(grow(found)), f"{region} ({found.mean() * 100:.0f}% of the image, by its rule)", False)
    _, color, thing = region.split(" ", 2)
    weight = membership(hsv(views.base), color)
    single = thing != "areas" and not (thing.endswith("s") and not thing.endswith("ss"))
    if thing == "areas":
        found = weight >= 1.0
        how = f"the {color} pixels ({found.mean() * 100:.1f}% of the image)"
    elif thing.removesuffix("s") in ("square", "rectangle", "disc", "triangle"):
        found = mask(views.base, region) >= 0.5  # its outline says which one: no other of its color is in doubt
        return Named(found, grow(grow(found)), f"{region} ({found.mean() * 100:.1f}% of the image)", single)
    else:
        found = changes.colored_thing(weight >= 1.0, every=not single)
        found = np.zeros(weight.shape, bool) if found is None else found
        how = f"{region}: what is {color} and connected, {found.mean() * 100:.1f}% of the image"
    if not found.any():
        raise NoRegion(f"there is nothing {color} in the picture")
    return Named(found, grow(fill_holes(weight >= 0.5) | found), how, single, color)


def _recolor(op: Op, used: Op | None, views: Views) -> Part:
    region = op.region or "the red areas"
    try:
        thing = named(region, views)
    except NoRegion as exc:
        return Part(0.0, _missing(region, exc), phrase(op))
    found, how = thing.found, thing.how
    share = changes.took(views.edited, found, op.color or "red")
    moved = float(shift(views.edited, views.base)[found].mean())
    faint = f"; the named pixels moved only {moved:.1f} levels on average, too little to see" if moved < VISIBLE else ""
    score = min(1.0, share / TOLERANCE[0]) * (min(1.0, moved / VISIBLE))
    low = round(TOLERANCE[0] * 100)
    finding = f"{how}: {share * 100:.0f}% of them are now {op.color} (done from {low}%){faint}"
    others = _others(thing, views, op.color or "red") if thing.one and thing.color else None
    if others:
        score = min(score, AMBIGUOUS)
        finding += f"; {others}"
    return Part(score, finding, phrase(op), within=score >= 1.0)


def _missing(region: str, why: NoRegion) -> str:
    said = str(why)
    return said if said.startswith("there is no") else f"there is no {region.removeprefix('the ')}: {said}"


def _others(thing: Named, views: Views, color: str) -> str | None:
    """Other regions of the named color at least a quarter the size of the one the critic takes for the thing,
    left as they were: the words do not say which is meant, so the critic cannot confirm the edit."""
    named_color = thing.color or ""
    weight = membership(hsv(views.base), named_color) >= 1.0
    labels = label(weight)
    found, counts = np.unique(labels[weight & ~thing.found], return_counts=True)
    size = int(thing.found.sum())
    left = [
        region for region, count in zip(found, counts, strict=True)
        if count >= size / 4 and changes.took(views.edited, (labels == region) & weight, color) < 0.5
    ]  # fmt: skip
    if not left:
        return None
    share = float(np.isin(labels, left).mean())
    return (
        f"but {len(left)} other {named_color} region{'s' if len(left) > 1 else ''} of {share * 100:.1f}% of the image, "
        f"at least a quarter its size, stayed {named_color}: the words do not say which one is meant, so I cannot "
        "confirm the right one was changed"
    )


def _keep_color(op: Op, used: Op | None, views: Views) -> Part:
    region = op.region or "the red areas"
    try:
        thing = named(region, views)
    except NoRegion as exc:
        return Part(0.0, _missing(region, exc), phrase(op))
    found, how = thing.found, thing.how
    base_saturation = hsv(views.base)[..., 1] / 255
    saturation = hsv(views.edited)[..., 1] / 255
    kept = float(saturation[found].mean() / max(base_saturation[found].mean(), 1e-6))
    rest = float(saturation[~thing.allowed].mean()) if (~thing.allowed).any() else 0.0
    # 70% of the saturation kept still reads as kept; the rest reads as gray up to a mean saturation of 0.05 and as
    # colored (score 0) from 0.175
    score = min(1.0, kept / 0.7) * max(0.0, 1 - max(0.0, rest - 0.05) * 8)
    finding = f"{how}: kept {kept * 100:.0f}% of its saturation; the rest has mean saturation {rest:.3f} (gray is 0)"
    return Part(score, finding, phrase(op))


def _posterize(op: Op, used: Op | None, views: Views) -> Part:
    step = max(1, int(views.scale))
    sample = views.edited_full[::step, ::step].reshape(-1, 3)
    # a level counts when 0.2% of the pixels have it (JPEG strays do not); each level over the asked one costs 1/24
    levels = max(int((np.bincount(sample[:, c], minlength=256) > 0.002 * len(sample)).sum()) for c in range(3))
    asked = round(op.amount or 4)
    score = 1.0 if levels <= asked + 1 else max(0.0, 1 - (levels - asked - 1) / 24)
    return Part(score, f"posterize: {levels} levels per channel (asked {asked})", phrase(op))


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
    if before >= 0.75 * asked:  # flat areas already make runs three quarters as wide as the asked blocks
        return Part(
            1.0,
            f"pixelate: the source is already made of flat blocks ({before:.0f} px); nothing to measure",
            phrase(op),
        )
    ratio = measured / asked
    score = _achieved(ratio)
    finding = f"pixelate: blocks about {measured:.0f} px wide (asked {asked:g} px; source {before:.0f})"
    corrected, derivation = _corrected(op, used, ratio, score)
    return Part(score, finding, phrase(corrected), derivation, score >= 1.0)


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
    asked = join([phrase(op) for op in geometry])
    return f"{asked} turns the {source[0]}×{source[1]} source into {ww}×{wh}, but the result is {gw}×{gh}: {problem}"


def _geometry_part(geometry: list[Op], targets: list[Op], views: Views, misshapen: str | None) -> Part:
    """The asked shape first (a wrong one scores at most 0.2), then the layout against the expected pixels."""
    match = abs if any(op.name == "invert" for op in targets) else float
    got, untouched = match(_ncc(views.edited, views.expected)), match(_ncc(views.edited, views.untouched))
    score = min(1.0, max(0.0, (got - 0.5) / 0.4))  # a layout correlating under 0.5 is another picture; 0.9 is it
    if misshapen:
        return Part(0.2 * score, f"{misshapen}; squeezed into the asked frame its layout matches at {got:.2f}", None)
    (height, width), (asked_width, asked_height) = views.edited_full.shape[:2], views.size
    shape = "as asked" if (width, height) == views.size else f"the shape of the asked {asked_width}×{asked_height}"
    asked = f"{join([phrase(op) for op in geometry])}: the result is {width}×{height}, {shape}"
    if _ncc(views.reference, views.untouched) > 0.98:
        return Part(1.0, f"{asked}, and the source looks the same after it, so the layout tells nothing apart", None)
    if untouched > got:
        score = min(score, 0.2)
    finding = f"{asked}; the layout matches the expected result at {got:.2f} (the untouched source at {untouched:.2f})"
    return Part(score, finding, None)


def _unsupported(pieces: list[str], views: Views, keep: str | None) -> Part:
    """The parts no operation covers; `keep` is the prompt to hand back when nothing else was asked."""
    named_parts = ", ".join(f"'{piece}'" for piece in pieces)
    ask = keep or join(pieces)
    share = float(changes.changed(views.edited, views.expected).mean())
    if share > 0.03:  # 3% of the image changed beyond what is measured: maybe it, so half the credit
        return Part(
            0.5,
            f"{named_parts}: {share * 100:.0f}% of the image changed beyond the measurable operations, "
            f"which may be it; this critic can only check {REPERTOIRE}",
            ask,
        )
    return Part(
        0.0,
        f"{named_parts} was not done ({share * 100:.1f}% of the image changed). The offline editor cannot do "
        f"this: it only does {REPERTOIRE}, on the whole image or on a region it finds by rule ({WHERE}, or a thing "
        f"by its color); {GENERATIVE} can",
        ask,
    )


# -- what else changed, and how well made the result is ----------------------------------------------------


def _preservation(targets: list[Op], views: Views) -> tuple[float, list[str]]:
    """(factor on the semantic score, findings): changes nobody asked for, over the whole image and beyond what a
    local operation names."""
    touched = set()
    for op in targets:
        touched |= {OPERATIONS[op.name].feature or op.name} | OPERATIONS[op.name].moves
    got, want = views.features("edited"), views.features("expected")
    penalty, findings = 0.0, []
    for name in FEATURES:
        if name in touched or all(_local(op) for op in targets):  # then `_spill` measures what else changed
            continue
        drift = got[name] - want[name] if name == "warmth" else (got[name] - want[name]) / max(want[name], 1e-3)
        limit = 0.04 if name == "warmth" else 0.12  # a visible shift: 4% of the red-blue balance, 12% of the rest
        if abs(drift) > limit:
            penalty += min(0.3, abs(drift) - limit + 0.1)
            findings.append(
                f"{name} {'rose' if drift > 0 else 'fell'} ({drift:+.2f}) though the instruction did not ask for it"
            )
    spilled, finding = _spill(targets, views)
    findings += finding
    return max(0.2, 1 - penalty - spilled), findings


def _spill(targets: list[Op], views: Views) -> tuple[float, list[str]]:
    """(penalty, findings): what changed beyond what the local operations name, from the source and the result
    alone: pixels that changed noticeably outside it (for one colored thing: changed pixels whose source is not of
    the thing's surface, or in a second place), and how far the pixels outside it moved on average. A visible patch
    of spill costs at least 3/10 of the semantic score; spill half as large as the named area 4/5."""
    local = [op for op in targets if _local(op)]
    if not local or any(op.name == "keep_color" for op in local):
        return 0.0, []  # keeping one color grays everything else on purpose
    moved = changes.changed(views.edited, views.base)
    allowed = np.zeros(views.base.shape[:2], bool)
    area, things, looks = 0, [], []
    for op in local:
        if OPERATIONS[op.name].kind == "drawn":
            allowed |= grow(grow(changes.changed(_expected_of(op, views), views.base)))
            continue
        with contextlib.suppress(NoRegion):
            thing = named(op.region or "the red areas", views)
            area += int(thing.found.sum())
            things += [thing] if thing.one else []
            if not (thing.one and thing.color):
                allowed |= thing.allowed
                continue
            core = changes.core(moved, thing.found)  # one colored thing: what changed must be of its surface
            like = changes.look(views.base, views.grain(), core, thing.color in NEUTRAL)
            allowed |= changes.alike(views.base, views.grain(), moved, like)
            looks.append((op.region, like))
    spilled = moved & ~allowed
    for thing in things:  # one thing: the change belongs in one place, the one over the thing
        labels = label(grow(grow(moved & allowed)))
        over = labels[thing.found & moved]
        main = np.bincount(over - over.min()).argmax() + over.min() if over.size else -1
        spilled |= moved & allowed & (labels != main) & ~grow(grow(thing.found))
    places = {op.region for op in local} & {"the sky", "the background"}
    if places:  # people are neither: changed skin is spill, whatever the region's rule says
        spilled |= moved & regions.skin(views.untouched)
    findings, penalty = [], 0.0
    share = float(spilled.mean())
    patch = changes.largest(spilled)
    if share > 0.003 or patch.mean() > SPLASH:  # a few stray pixels of resampling are no spill; a splash is
        ratio = float(spilled.sum()) / max(area, int(moved.sum()), 1)
        penalty += min(0.8, (0.3 if patch.mean() > SPLASH else 0.1) + 2 * ratio)
        findings.append(
            f"the change spread beyond what the instruction names: {share * 100:.1f}% of the image changed outside "
            f"it ({ratio * 100:.0f}% as much as the named area), the largest patch of "
            f"{patch.mean() * 100:.1f}% {changes.where(patch, views.scale)}"
        )
        if looks:  # one colored thing: say how the source under the patch differs from what changed on the thing
            region, like = looks[0]
            unlike = changes.unlike(views.base, views.grain(), patch, like)
            findings[-1] += f"; there the source is not the surface of {region} that changed: {unlike}"
    outside = ~allowed
    if outside.mean() > 0.05 and all(_local(op) for op in targets):
        drift = float(shift(views.edited, views.base)[outside].mean())
        if drift > VISIBLE / 2:  # half of what a glance notices, over everything else: a visible shift of it all
            penalty += min(0.5, (drift - VISIBLE / 2) / (4 * VISIBLE))
            findings.append(f"outside what the instruction names the pixels moved by {drift:.1f} levels on average")
    if not findings:
        findings.append(f"outside what the instruction names, {share * 100:.1f}% of the image changed")
    return penalty, findings


def _expected_of(op: Op, views: Views) -> np.ndarray:
    image = Image.fromarray(np.clip(views.base, 0, 255).astype(np.uint8))
    return _array(apply(image, replace(op, amount=op.amount / views.scale) if op.name in SIZED else op))


def _unchanged(targets: list[Op], views: Views, success: float) -> bool:
    """The result is the source in the asked frame, though the instruction asks for a change (one the operations
    would make, or words they do not cover, or a thing that is not there)."""
    if views.edited.shape != views.reference.shape:
        return False
    asked = float(difference(views.expected, views.reference).mean()) >= 1.0 or not targets or success < 0.5
    done = float(difference(views.edited, views.reference).mean())
    return asked and done < 0.5 and changes.changed(views.edited, views.reference).mean() < 0.001


def _quality(targets: list[Op], views: Views) -> tuple[float, list[str]]:
    """(quality score, findings): clipping, banding, detail lost or added beyond what was asked, blotches and seams
    in local changes, skin flattened into steps. Each penalty says in its comment why it has its size."""
    names = {op.name for op in targets}
    penalty, findings = 0.0, []

    drawn = changes.changed(views.expected, views.base)  # borders and text may be pure black or white on purpose

    def clipped(x: np.ndarray) -> float:
        luma = x @ LUMA
        return float((((luma >= 250) | (luma <= 4)) & ~drawn).mean())

    extra = clipped(views.edited) - clipped(views.reference)
    if extra > 0.03:  # 3% of the image newly clipped is a visible blown or crushed patch; each further 1% costs 0.15
        penalty += min(4.0, (extra - 0.03) * 15)
        findings.append(f"{extra * 100:.0f}% more of the image is clipped to pure black or white (lost detail)")
    if not names & {"posterize", "pixelate"}:
        step = max(1, int(views.scale))
        before = len(np.unique((views.source_full[::step, ::step] @ LUMA).astype(np.uint8)))
        after = len(np.unique((views.edited_full[::step, ::step] @ LUMA).astype(np.uint8)))
        if after < 0.5 * before:  # half the gray levels gone shows as bands in smooth gradients
            penalty += min(3.0, (0.5 - after / before) * 8 + 0.5)
            findings.append(f"banding: {after} gray levels left of the source's {before}")
        penalty += _skin(views, findings)
    if not names & {"blur", "pixelate", "sharpen"}:
        expected = _detail(views.expected)
        ratio = _detail(views.edited) / expected if expected > 1e-3 else 1.0  # a flat image has no detail to lose
        if ratio < 0.7:  # 30% of the fine detail gone reads as soft; each further 10% costs a point
            penalty += min(3.0, (0.7 - ratio) * 10)
            findings.append(f"the image lost {(1 - ratio) * 100:.0f}% of its fine detail")
        elif ratio > 1.6:  # 60% more edge energy than asked reads as harsh or noisy
            penalty += min(2.0, (ratio - 1.6) * 3)
            findings.append(f"the image is {(ratio - 1) * 100:.0f}% harsher or noisier in fine detail than asked")
    penalty += _local_flaws(targets, views, findings)
    return round(max(0.0, 10 - penalty), 1), findings


def _local_flaws(targets: list[Op], views: Views, findings: list[str]) -> float:
    """Blotches inside and seams along a local change: measured where the result differs from `base`."""
    penalty = 0.0
    moved = changes.changed(views.edited, views.base)
    speckled = changes.changed(views.sampled[1], views.sampled[0]) if views.sampled else moved
    for region in dict.fromkeys(op.region for op in targets if op.region):
        op = next(op for op in targets if op.region == region)
        if op.region in ("the shadows", "the highlights"):
            continue
        try:
            inside = named(op.region, views).found
            for _ in range(3):  # with its outline's neighbourhood: a patch left out at a thing's edge is a blotch
                inside = grow(inside)
            inside = fill_holes(inside)
        except NoRegion:
            continue
        blotchy = changes.speckle(speckled, inside)
        if speckled[inside].mean() > 0.05 and blotchy > changes.SPECKLE:  # each 1% more speckle costs 0.4
            penalty += min(4.0, (blotchy - changes.SPECKLE) * 40)
            findings.append(
                f"blotchy: in {op.region}, {blotchy * 100:.0f}% of the pixels disagree with their neighbourhood "
                f"about whether they changed (a clean change: under {changes.SPECKLE * 100:.0f}%)"
            )
        if op.region in FRAMES or op.region == "the centre":
            continue  # the edge of a half or third is where the instruction puts it
        seams, border = changes.seams(views.base, views.edited, moved & grow(grow(inside)))
        if border >= 20 and seams > changes.SEAMS:  # each 10% more of the border on a seam costs a point
            penalty += min(3.0, (seams - changes.SEAMS) * 10)
            findings.append(
                f"hard seams: along {seams * 100:.0f}% of the change's border in {op.region} the result has a new "
                "edge where the source was smooth"
            )
    return penalty


def _skin(views: Views, findings: list[str]) -> float:
    """Skin tones flattened into a few steps (posterised): a face loses its shading."""
    step = max(1, int(views.scale))
    before, after = views.source_full[::step, ::step].astype(np.float32), views.edited_full[::step, ::step]
    if before.shape != after.shape:
        return 0.0
    skin = regions.skin(before)
    if skin.mean() < 0.01:
        return 0.0
    was, now = changes.steps(before, skin), changes.steps(after.astype(np.float32), skin)
    if now >= 0.5 * was:  # half the levels of the skin kept still shades smoothly
        return 0.0
    findings.append(f"posterised skin: the skin tones keep {now} brightness levels of the source's {was}")
    return min(3.0, (0.5 - now / was) * 8 + 0.5)


# -- a person's feedback ---------------------------------------------------------------------------------------


def answer(feedback: str, prompt: str, size: tuple[int, int]) -> tuple[str, list[str]]:
    """The next prompt that follows a person's feedback on the edit `prompt` made, and what was done with each
    part of it. Amounts change relative to what the editor applied for `prompt`; what cannot be acted on is said."""
    plan = read(prompt)
    ops = [replace(applied(resolve(op, size)), vague=False) for op in plan.ops]
    nudges, unknown = read_feedback(feedback)
    lines = [f"Your feedback: {feedback.strip()}"]
    for nudge in nudges:
        ops, said = follow(ops, nudge)
        lines.append(f"- {said}")
    lines += [f"- I cannot act on '{part}': it names no amount or operation I know ({REPERTOIRE})." for part in unknown]
    if not nudges:
        lines.append("Nothing in the feedback is something I can act on.")
    refined = join([phrase(op) for op in ops] + plan.unknown) or prompt
    return refined, lines
