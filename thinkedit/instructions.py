"""English editing instructions → a list of operations with amounts, plus the parts that were not understood.

The offline editor applies what `read` returns; the offline critic reads the ORIGINAL instruction with
it to know the intent, and writes its refined prompt with `describe`, whose text `read` reads back
exactly. A vague look ("make it pop", "make it look old") becomes the full recipe of that look, each
operation marked `vague`: the editor, given no amount, applies a cautious share of it (`CAUTIOUS`);
the critic expects the whole look and asks for it with explicit amounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

CAUTIOUS = 0.4  # share of a vague look that the editor applies when no amount was given

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "orange": (245, 140, 20), "yellow": (245, 215, 30), "green": (40, 170, 60),
    "cyan": (0, 200, 220), "blue": (30, 80, 220), "purple": (130, 50, 180), "violet": (140, 70, 210),
    "magenta": (220, 40, 200), "pink": (245, 130, 180), "brown": (130, 80, 40), "gold": (212, 175, 55),
    "white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "grey": (128, 128, 128),
}  # fmt: skip
_COLOR_WORD = r"\b(" + "|".join(COLORS) + r")s?\b"
SHAPES = {
    "square": "square",
    "rectangle": "rectangle",
    "disc": "disc",
    "disk": "disc",
    "circle": "disc",
    "ball": "disc",
    "triangle": "triangle",
}
_SHAPE_WORD = r"\b((?:" + "|".join(SHAPES) + r")s?)\b"

# A look's usual recipe at full strength: (operation, amount).
LOOKS: dict[str, tuple[str, list[tuple[str, float]]]] = {
    "pop": (r"\bpop(s|ping)?\b|\bpunch(y|ier)\b|\beye-?catching\b|\bstand out\b",
            [("saturation", 0.35), ("contrast", 0.25)]),
    "old": (r"\bold(er)?\b|\bvintage\b|\bretro\b|\baged\b|\bantique\b|\bold-fashioned\b",
            [("sepia", 0.8), ("contrast", -0.15), ("vignette", 0.35)]),
    "moody": (r"\bmood(y|ier)\b|\bgloom(y|ier)\b|\bsomb(er|re)\b",
              [("brightness", -0.2), ("saturation", -0.3), ("contrast", 0.15), ("vignette", 0.3)]),
    "dramatic": (r"\bdramatic\b", [("contrast", 0.4), ("vignette", 0.3)]),
    "cinematic": (r"\bcinematic\b|\bfilmic\b", [("contrast", 0.2), ("saturation", -0.15), ("vignette", 0.25)]),
    "summer": (r"\bsumm(er|ery)\b|\bsunn(y|ier)\b", [("warmth", 0.25), ("brightness", 0.1), ("saturation", 0.2)]),
    "winter": (r"\bwint(er|ry|ery)\b|\bicy\b|\bfrosty\b", [("warmth", -0.3), ("saturation", -0.15)]),
    "faded": (r"\bfaded\b|\bwashed[- ]out\b", [("contrast", -0.3), ("saturation", -0.3)]),
    "cozy": (r"\bco[sz]y\b", [("warmth", 0.25), ("vignette", 0.2)]),
    "better": (r"\benhance\b|\bimprove\b|\bbetter\b|\bnicer\b|\bprettier\b|\bbeautiful\b|\bprofessional\b",
               [("contrast", 0.15), ("saturation", 0.15), ("sharpen", 0.5)]),
}  # fmt: skip

# (range of the amount) for the operations with a continuous amount
LIMITS: dict[str, tuple[float, float]] = {
    "brightness": (-0.9, 2.0), "contrast": (-0.9, 2.0), "saturation": (-1.0, 2.0), "warmth": (-1.0, 1.0),
    "sepia": (0.0, 1.0), "vignette": (0.0, 0.9), "sharpen": (0.0, 5.0), "blur": (0.3, 200.0),
    "pixelate": (2.0, 512.0), "border": (1.0, 1000.0), "posterize": (2.0, 64.0), "text": (0.02, 0.5),
}  # fmt: skip
DEFAULTS = {
    "brightness": 0.25,
    "contrast": 0.25,
    "saturation": 0.3,
    "warmth": 0.2,
    "sepia": 1.0,
    "vignette": 0.35,
    "sharpen": 1.0,
    "posterize": 4,
    "text": 0.08,
}
SIZED = ("blur", "pixelate", "border")  # amounts in pixels, by default a share of the image's size
GEOMETRY = ("rotate", "flip", "crop", "resize")
REPERTOIRE = "color, tone, geometry, frames and text"

_SLIGHT = r"\b(slight(ly)?|a (little )?bit|a little|a touch|a tad|subtl[ey]|somewhat|gently|mildly|thin)\b"
_STRONG = r"\b(much|very|a lot|lots|strong(ly)?|significantly|really|heavily|dramatically|way|thick|wide|big)\b"
_EXTREME = r"\b(extremely|massively|hugely|super|really really)\b"
_FILLER = set(
    [
        "please",
        "can",
        "could",
        "would",
        "you",
        "i",
        "want",
        "like",
        "to",
        "the",
        "a",
        "an",
        "it",
        "its",
        "this",
        "that",
        "image",
        "photo",
        "picture",
        "me",
        "make",
        "just",
        "some",
        "bit",
        "little",
        "slightly",
        "more",
        "less",
        "so",
        "also",
        "be",
        "look",
        "looks",
        "feel",
        "of",
        "in",
        "on",
        "with",
        "for",
        "and",
        "is",
        "my",
    ]
)


@dataclass(frozen=True)
class Op:
    """One operation. `amount` is in the operation's own unit (see `describe`); None = size-based default."""

    name: str
    amount: float | None = None
    where: str | None = None  # crop side, flip axis, text position, "WxH" for resize, shape of a colored object
    color: str | None = None  # border / text / recolor target / kept color
    source_color: str | None = None  # recolor: the color to change
    text: str | None = None
    vague: bool = False  # part of a look read from a vague word: the editor applies it cautiously
    degree: float = 1.0  # degree words, for amounts resolved later from the image size


@dataclass
class Plan:
    ops: list[Op]
    unknown: list[str]  # parts of the instruction no operation covers, as the person wrote them
    looks: list[str]  # vague looks that were read ("pop", "old", …)


def read(instruction: str) -> Plan:
    """Read an instruction into operations in the order written, and the parts not understood."""
    text = " ".join(instruction.split())
    quotes: list[str] = []

    def stash(match: re.Match) -> str:
        quotes.append(match.group(1) or match.group(2))
        return f" QUOTE{len(quotes) - 1} "

    text = re.sub(r"[\"“”]([^\"“”]+)[\"“”]|(?<!\w)'([^']+)'(?!\w)", stash, text)
    low = text.lower()
    low = re.sub(r"\bblack[- ](and|&|n)[- ]white\b|\bb\s*&\s*w\b|\bb/w\b", "blackwhite", low)
    ops: list[Op] = []
    unknown: list[str] = []
    looks: list[str] = []
    keep = re.compile(
        rf"\b(?:keep|leave) (?:only )?(?:the )?{_COLOR_WORD}(?:\s+{_SHAPE_WORD})?[^,;.]*?(?:,|\band\b)\s*"
        r"(?:make |turn |convert )?"
        r"(?:everything else|the rest|all else)[^,;.]*?\b(?:blackwhite|gr[ae]y(?:scale)?|monochrome)\b"
        rf"|\bcolou?r splash (?:in |of )?{_COLOR_WORD}"
    )
    pieces = []
    position = 0
    for match in keep.finditer(low):
        pieces.append(low[position : match.start()])
        shape = f"_{_shape(match.group(2))}" if match.group(2) else ""
        pieces.append(f" keep{match.group(1) or match.group(3)}{shape} ")
        position = match.end()
    low = "".join(pieces) + low[position:]
    for clause in re.split(r"\s*(?:[,;:]|[.!?](?=\s|$)|\band then\b|\bthen\b|\band\b|\balso\b|\bplus\b)\s*", low):
        clause = clause.strip()
        if not clause:
            continue
        found = _read_clause(clause, quotes)
        looks += [name for name, (pattern, _) in LOOKS.items() if re.search(pattern, clause)]
        if found:
            ops += found
        elif set(re.findall(r"[a-z0-9]+", clause)) - _FILLER:
            unknown.append(_restore(clause, quotes))
    return Plan(ops, unknown, looks)


def _restore(clause: str, quotes: list[str]) -> str:
    return re.sub(r"\bquote(\d+)\b", lambda m: f'"{quotes[int(m.group(1))]}"', clause, flags=re.IGNORECASE)


def _degree(clause: str) -> float:
    if re.search(_EXTREME, clause):
        return 3.0
    if re.search(_STRONG, clause):
        return 2.0
    if re.search(_SLIGHT, clause):
        return 0.5
    return 1.0


def _percent(clause: str) -> float | None:
    match = re.search(r"(-?\d+(?:\.\d+)?)\s*(?:%|percent\b)", clause)
    return float(match.group(1)) / 100 if match else None


def _number(clause: str, unit: str) -> float | None:
    match = re.search(rf"(\d+(?:\.\d+)?)\s*-?\s*(?:{unit})", clause)
    return float(match.group(1)) if match else None


def _factor(clause: str) -> float | None:
    match = re.search(r"(\d+(?:\.\d+)?)\s*(?:x|×|times)\b", clause)
    if match:
        return float(match.group(1))
    for word, value in (("twice", 2.0), ("double", 2.0), ("triple", 3.0), ("half", 0.5)):
        if re.search(rf"\b{word}\b", clause):
            return value
    return None


def _sign(clause: str, up: str, down: str) -> int | None:
    if re.search(down, clause) or re.search(r"\b(decrease|reduce|lower|less|lessen|cut|drop|weaker|remove)\b", clause):
        return -1
    if re.search(up, clause) or re.search(r"\b(increase|raise|boost|more|higher|add|up|stronger|enhance)\b", clause):
        return 1
    return None


def _signed(name: str, clause: str, sign: int) -> Op:
    """An amount-in-percent operation: "by 30%", "twice as …", or the default scaled by degree words."""
    percent, factor = _percent(clause), _factor(clause)
    if percent is not None:
        amount = abs(percent)
    elif factor is not None and factor > 1:
        amount = factor - 1
    else:
        amount = DEFAULTS[name] * _degree(clause)
    return Op(name, _clamp(name, sign * amount))


_TONES = [  # (operation, pattern that names it, words that raise it, words that lower it)
    ("brightness", r"\bbright|\blight(er|en)\b|\bexposure\b|\bdark(er|en)?\b|\bdim(mer)?\b",
     r"\bbright(er|en)\b|\blight(er|en)\b", r"\bdark(er|en)?\b|\bdim(mer)?\b"),
    ("contrast", r"\bcontrast", r"\bhigh(er)? contrast\b", r"\blow(er)? contrast\b|\bflat(ter)?\b"),
    ("saturation", r"\bsaturat|\bdesaturat|\bvivid|\bvibrant|\bcolou?rful|\bmuted\b|\bdull(er)?\b",
     r"\bvivid|\bvibrant|\bcolou?rful", r"\bdesaturat|\bmuted\b|\bdull(er)?\b"),
    ("warmth", r"\bwarm|\bcool(er)?\b|\bcold(er)?\b", r"\bwarm", r"\bcool(er)?\b|\bcold(er)?\b"),
]  # fmt: skip


def _read_clause(clause: str, quotes: list[str]) -> list[Op]:
    keep = re.search(r"\bkeep(" + "|".join(COLORS) + r")(?:_(\w+))?\b", clause)
    if keep:
        return [Op("keep_color", color=keep.group(1), where=keep.group(2))]
    quote = re.search(r"\bquote(\d+)\b", clause)
    if quote and re.search(r"\b(add|write|put|place|caption|text|title|label|say|saying|reads?|print|stamp)\b", clause):
        return [_text_op(clause, quotes[int(quote.group(1))])]
    return _looks(clause) + _filters(clause) + _border_or_recolor(clause) + _geometry(clause)


def _looks(clause: str) -> list[Op]:
    """The named looks ("vintage", "dramatic") and the tone words ("brighter", "cooler") of a clause."""
    ops: list[Op] = []
    for pattern, recipe in LOOKS.values():
        if re.search(pattern, clause):
            degree = _degree(clause)
            ops += [Op(op, _clamp(op, amount * degree), vague=True) for op, amount in recipe]
    for name, pattern, up, down in _TONES:
        if re.search(pattern, clause):
            ops.append(_signed(name, clause, _sign(clause, up, down) or 1))
    return ops


def _filters(clause: str) -> list[Op]:
    """The whole-image filters a clause names, with the amount it gives or a default scaled by its degree words."""
    ops: list[Op] = []
    if re.search(r"\bblackwhite\b|\bgr[ae]y ?scale\b|\bmonochrome\b|\bremove (all )?(the )?colou?rs?\b", clause):
        ops.append(Op("grayscale", 1.0))
    if re.search(r"\bsepia\b", clause):
        ops.append(Op("sepia", _clamp("sepia", _percent(clause) or DEFAULTS["sepia"] * min(_degree(clause), 1.0))))
    if re.search(r"\binvert|\bnegative\b", clause):
        ops.append(Op("invert", 1.0))
    if re.search(r"\bblur|\bsoften|\bout of focus\b|\bdefocus", clause):
        ops.append(Op("blur", _number(clause, r"px|pixels?"), degree=_degree(clause)))
    if re.search(r"\bsharp|\bcrisp", clause):
        ops.append(Op("sharpen", _clamp("sharpen", _percent(clause) or DEFAULTS["sharpen"] * _degree(clause))))
    if re.search(r"\bvignett|\bdarken the (corners|edges)\b", clause):
        ops.append(Op("vignette", _clamp("vignette", _percent(clause) or DEFAULTS["vignette"] * _degree(clause))))
    if re.search(r"\bposteri[sz]|\bfewer colou?rs\b", clause):
        levels = _number(clause, r"levels?|colou?rs|tones") or round(DEFAULTS["posterize"] / _degree(clause))
        ops.append(Op("posterize", _clamp("posterize", levels)))
    if re.search(r"\bpixel(ate|ated|ise|ize|ized|ation)\b|\bmosaic\b|\b8-?bit\b", clause):
        ops.append(Op("pixelate", _number(clause, r"px|pixels?"), degree=_degree(clause)))
    return ops


def _border_or_recolor(clause: str) -> list[Op]:
    """A border (in the last color named), or else a recolor from the first color named to the second."""
    colors = re.findall(_COLOR_WORD, clause)
    if re.search(r"\bborder\b|\bframe\b", clause):
        color = colors[-1] if colors else "white"
        return [Op("border", _number(clause, r"px|pixels?"), color=color, degree=_degree(clause))]
    if len(set(colors)) >= 2 and re.search(r"\b(make|turn|change|recolou?r|paint|replace|swap|colou?r)\b", clause):
        shape = re.search(rf"\b{colors[0]}s?\s+{_SHAPE_WORD}", clause)  # "the blue disc": that object only
        where = _shape(shape.group(1)) if shape else None
        return [Op("recolor", color=colors[1], source_color=colors[0], where=where)]
    return []


def _shape(word: str) -> str:
    """The shape a word names ("ball" → "disc"); a plural stays plural ("balls" → "discs": every one that fits)."""
    plural = word.endswith("s")
    return SHAPES[word.removesuffix("s")] + ("s" if plural else "")


def _text_op(clause: str, text: str) -> Op:
    where = "center"
    for word, place in (("top", "top"), ("bottom", "bottom"), ("middle", "center"), ("cent", "center")):
        if re.search(rf"\b{word}", clause):
            where = place
            break
    colors = re.findall(_COLOR_WORD, clause)
    percent = _percent(clause)
    if percent is None:
        size = {"small": 0.05, "tiny": 0.035, "large": 0.12, "big": 0.12, "huge": 0.2}
        percent = next((v for k, v in size.items() if re.search(rf"\b{k}\b", clause)), DEFAULTS["text"])
    return Op("text", _clamp("text", percent), where=where, color=colors[0] if colors else "white", text=text)


def _geometry(clause: str) -> list[Op]:
    ops = []
    if re.search(r"\bupside down\b", clause) and not re.search(r"\bflip", clause):
        ops.append(Op("rotate", 180.0))
    elif re.search(
        r"\brotat|\bturn (it |the (image|photo|picture) )?(\d|left|right|clockwise|counter|anti)|\btilt", clause
    ):
        angle = _number(clause, r"°|degrees?|deg\b") or 90.0
        ccw = re.search(r"\b(counter|anti)[- ]?clockwise\b|\bccw\b|\bleft\b", clause)
        ops.append(Op("rotate", -angle if ccw else angle))
    if re.search(r"\bflip|\bmirror|\breflect", clause):
        vertical = re.search(r"\bvertical|\bupside|\btop to bottom\b|\bupside down\b", clause)
        ops.append(Op("flip", where="vertical" if vertical else "horizontal"))
    if re.search(r"\bcrop|\bzoom in\b|\bzoom\b|\btrim\b", clause):
        ops.append(_crop(clause))
    if re.search(
        r"\bresize|\bscale (it )?(down|up|to)\b|\bshrink|\bdownscale|\bupscale|\bsmaller\b|\bhalf (the )?size\b", clause
    ):
        size = re.search(r"(\d+)\s*[x×]\s*(\d+)", clause)
        if size:
            ops.append(Op("resize", 1.0, where=f"{size.group(1)}x{size.group(2)}"))
        else:
            scale = _percent(clause) or _factor(clause) or 0.5
            ops.append(Op("resize", round(scale, 3)))
    return ops


def _crop(clause: str) -> Op:
    side = next((s for s in ("left", "right", "top", "bottom") if re.search(rf"\b{s}\b", clause)), None)
    if re.search(r"\bsquare\b", clause):
        return Op("crop", 1.0, where="square")
    if re.search(r"\bzoom", clause) and side is None:
        factor = _factor(clause) or 1 + 0.5 * _degree(clause)
        return Op("crop", round(1 / max(factor, 1.0), 3), where="center")
    keep = _percent(clause)
    for word, value in (("half", 0.5), ("third", 1 / 3), ("quarter", 0.25)):
        if keep is None and re.search(rf"\b{word}\b", clause):
            keep = value
    if keep is not None and side and re.search(r"\b(off|from)\b", clause):
        side, keep = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[side], 1 - keep
    return Op("crop", round(keep if keep is not None else 0.75, 3), where=side or "center")


def _clamp(name: str, value: float) -> float:
    low, high = LIMITS.get(name, (-1e9, 1e9))
    return round(min(high, max(low, value)), 3)


# -- amounts that depend on the image, and the canonical text ---------------------------------------------


def resolve(op: Op, size: tuple[int, int]) -> Op:
    """The same operation with a pixel amount for size-based operations (blur radius, block, border)."""
    if op.name not in SIZED or op.amount is not None:
        return op
    share = {"blur": 1 / 150, "pixelate": 1 / 48, "border": 1 / 32}[op.name]
    low = {"blur": 1.0, "pixelate": 2.0, "border": 1.0}[op.name]
    return replace(op, amount=float(max(low, round(max(size) * share * op.degree))))


def applied(op: Op) -> Op:
    """What the editor actually applies: a cautious share of a vague look, everything else as written."""
    if not op.vague or op.amount is None:
        return op
    return replace(op, amount=round(op.amount * CAUTIOUS, 3), vague=False)


def describe(op: Op) -> str:
    """Explicit editor text for one operation; `read` reads it back to the same operation."""
    amount = op.amount if op.amount is not None else 0.0
    pct = f"{round(abs(amount) * 100)}%"
    updown = "increase" if amount >= 0 else "decrease"
    match op.name:
        case "brightness" | "contrast" | "saturation":
            return f"{updown} {op.name} by {pct}"
        case "warmth":
            return f"make it {'warmer' if amount >= 0 else 'cooler'} by {pct}"
        case "sepia":
            return f"apply a sepia tone at {pct} strength"
        case "vignette":
            return f"add a vignette at {pct} strength"
        case "sharpen":
            return f"sharpen by {pct}"
        case "grayscale":
            return "convert to black and white"
        case "invert":
            return "invert the colors"
        case "blur":
            return f"blur with a radius of {amount:g} pixels"
        case "pixelate":
            return f"pixelate with {amount:g}-pixel blocks"
        case "posterize":
            return f"posterize to {amount:g} levels"
    return _describe_layout(op, amount, pct)


def _describe_layout(op: Op, amount: float, pct: str) -> str:
    """`describe` for the operations that place something: borders, geometry, text, recolors of a region."""
    match op.name:
        case "border":
            article = "an" if f"{amount:g}".startswith(("8", "11", "18")) else "a"
            return f"add {article} {amount:g}-pixel {op.color} border"
        case "rotate":
            return f"rotate {abs(amount):g} degrees {'clockwise' if amount >= 0 else 'counter-clockwise'}"
        case "flip":
            return f"flip {op.where}ly"
        case "crop":
            if op.where == "square":
                return "crop to a centered square"
            return f"crop to the {op.where} {round(amount * 100):g}%"
        case "resize":
            return f"resize to {op.where}" if op.where else f"resize to {round(amount * 100):g}%"
        case "text":
            return f'add the text "{op.text}" at the {op.where} in {op.color} at {pct} of the image height'
        case "recolor":
            return f"make the {op.source_color} {op.where or 'areas'} {op.color}"
        case "keep_color":
            kept = f"{op.color} {op.where}" if op.where else op.color
            return f"keep only the {kept} and make everything else black and white"
    raise ValueError(f"unknown operation {op.name}")


def join(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
