"""English editing instructions → a list of operations with amounts, plus the parts that were not understood.

The offline editor applies what `read` returns; the offline critic reads the ORIGINAL instruction with
it to know the intent, and writes its refined prompt with `phrase`, whose text `read` reads back
exactly. A vague look ("make it pop", "make it look old") becomes the full recipe of that look, each
operation marked `vague`: the editor, given no amount, applies a cautious share of it (`CAUTIOUS`);
the critic expects the whole look and asks for it with explicit amounts.

Each operation's facts (kind, range, default, what shows it, what else it moves) are one row of `OPERATIONS`. A
tone, filter or color operation may act on a region: a place ("the sky", "the top half": `PLACES`) or a colored
thing ("the red cup"), found by the rules in `thinkedit.regions`. A region word no rule finds ("the table") is
never dropped: its clause is not done and is reported as not understood. `read_feedback` reads a person's words
about an edit ("less sepia, keep the vignette") with the same reader, and `follow` applies them to the amounts.
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


@dataclass(frozen=True)
class Operation:
    """Everything the reader, the offline editor and the offline critic know about one operation."""

    kind: str  # "tone": per pixel · "filter": per neighbourhood · "geometry": changes the frame · "drawn": draws at
    #            a place (border, text) · "color": picks pixels by color (recolor, keep one color)
    limits: tuple[float, float] = (-1e9, 1e9)  # range of the amount, in the operation's own unit (see `phrase`)
    default: float | None = None  # amount when the words give none, before degree words scale it
    per_side: float | None = None  # pixel amounts: the default as a share of the image's longer side
    feature: str | None = None  # the critic's global measurement that shows it; None: it has a measurement of its own
    moves: frozenset[str] = frozenset()  # other global measurements it moves on its own (not "unasked" changes)


_EVERY = frozenset({"brightness", "contrast", "saturation", "warmth", "detail"})
# The per-side shares give a blur of 1/150 of the side (visible, not smeared), 48 pixelate blocks across and a
# border of 1/32 of the side (a frame, not a mat). The moves are what each operation does to the global features
# by its nature: sepia mutes colour toward one tint, a vignette darkens and spreads the corners' tones.
OPERATIONS: dict[str, Operation] = {
    "brightness": Operation("tone", (-0.9, 2.0), 0.25, feature="brightness", moves=frozenset({"saturation", "contrast"})),
    "contrast": Operation("tone", (-0.9, 2.0), 0.25, feature="contrast", moves=frozenset({"saturation", "detail"})),
    "saturation": Operation("tone", (-1.0, 2.0), 0.3, feature="saturation", moves=frozenset({"warmth"})),
    "warmth": Operation("tone", (-1.0, 1.0), 0.2, feature="warmth", moves=frozenset({"saturation", "brightness"})),
    "sepia": Operation("tone", (0.0, 1.0), 1.0, moves=frozenset({"saturation", "warmth", "contrast"})),
    "grayscale": Operation("tone", (0.0, 1.0), 1.0, feature="saturation", moves=frozenset({"saturation", "warmth"})),
    "invert": Operation("tone", (0.0, 1.0), 1.0, moves=_EVERY),
    "vignette": Operation("tone", (0.0, 0.9), 0.35, moves=frozenset({"brightness", "contrast"})),
    "posterize": Operation("tone", (2.0, 64.0), 4, moves=frozenset({"contrast", "saturation", "detail", "brightness"})),
    "sharpen": Operation("filter", (0.0, 5.0), 1.0, feature="detail", moves=frozenset({"contrast"})),
    "blur": Operation("filter", (0.3, 200.0), per_side=1 / 150, feature="detail", moves=frozenset({"contrast"})),
    "pixelate": Operation("filter", (2.0, 512.0), per_side=1 / 48, moves=frozenset({"contrast"})),
    "border": Operation("drawn", (1.0, 1000.0), per_side=1 / 32, moves=_EVERY),
    "text": Operation("drawn", (0.02, 0.5), 0.08, moves=frozenset({"brightness", "contrast", "detail"})),
    "recolor": Operation("color", moves=frozenset({"saturation", "warmth"})),
    "keep_color": Operation("color", moves=_EVERY),
    "rotate": Operation("geometry", moves=frozenset({"brightness", "contrast", "detail"})),
    "flip": Operation("geometry"),
    "crop": Operation("geometry", moves=frozenset({"detail"})),
    "resize": Operation("geometry", moves=frozenset({"detail"})),
}  # fmt: skip
SIZED = tuple(name for name, facts in OPERATIONS.items() if facts.per_side)  # amounts in pixels
GEOMETRY = tuple(name for name, facts in OPERATIONS.items() if facts.kind == "geometry")
REGIONAL = tuple(name for name, facts in OPERATIONS.items() if facts.kind in ("tone", "filter", "color"))
REPERTOIRE = "color, tone, geometry, frames and text"
PLACES = (  # region words: `regions.place` finds each by a rule it documents
    "the sky", "the background", "the foreground", "the shadows", "the highlights", "the centre",
    *(f"the {side} {part}" for side in ("top", "bottom", "left", "right") for part in ("half", "third", "quarter")),
)  # fmt: skip
WHERE = "the sky, the background or foreground, a half, third or quarter, the centre, the shadows or highlights"

_SLIGHT = r"\b(slight(ly)?|a (little )?bit|a little|a touch|a tad|subtl[ey]|somewhat|gently|mildly|thin)\b"
_STRONG = r"\b(much|very|a lot|lots|strong(ly)?|significantly|really|heavily|dramatically|way|thick|wide|big)\b"
_EXTREME = r"\b(extremely|massively|hugely|super|really really)\b"
_FILLER = {
    "please", "can", "could", "would", "you", "i", "want", "like", "to", "the", "a", "an", "it", "its", "this",
    "that", "image", "photo", "picture", "me", "make", "just", "some", "bit", "little", "slightly", "more", "less",
    "so", "also", "be", "look", "looks", "feel", "of", "in", "on", "with", "for", "and", "is", "my",
}  # fmt: skip
# Nouns after "the" that mean the whole picture or a property of it, not a region ("brighten the whole image").
_WHOLE = {
    "image", "photo", "photograph", "picture", "pic", "shot", "scene", "whole", "entire", "overall", "everything",
    "color", "colors", "colour", "colours", "tone", "tones", "look", "mood", "feel", "feeling", "vibe", "style",
    "lighting", "light", "exposure", "brightness", "contrast", "saturation", "warmth", "sharpness", "detail",
    "details", "focus", "corners", "edges", "size", "rest", "text", "border", "frame", "vignette", "sepia", "crop",
    "amount", "effect", "filter", "hue", "hues", "tint", "same", "way", "balance", "result", "edit", "first",
}  # fmt: skip
_AREAS = {"areas", "area", "parts", "part", "bits", "pixels", "ones", "things", "regions", "shades", "tones"}
_PLACE_WORDS = [  # (pattern, region): the region words `regions.place` finds by rule
    (r"\bsk(?:y|ies)\b", "the sky"),
    (r"\bbackground\b|\bbackdrop\b", "the background"),
    (r"\bforeground\b", "the foreground"),
    (r"\bshadows\b", "the shadows"),
    (r"\bhighlights\b", "the highlights"),
    (r"\b(?:centre|center|middle)\b", "the centre"),
]
# "the X" as what a verb acts on or where ("brighten the face", "more contrast in the water"): a region word
_OBJECT = (
    r"(?:^|\b(?:make|turn|change|brighten|darken|lighten|blur|sharpen|soften|paint|colou?r|recolou?r|tint|warm|cool|"
    r"saturate|desaturate|enhance|boost|fade|mute|in|on|of|to|at|around|behind|near|over|under|above|below|beside|"
    r"inside|outside|across|along|between|than)\s+)"
    r"((?:the|her|his|their|your|my)\s+([a-z]+(?:'s)?))"
)
_SIDES = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom", "left": "left", "right": "right"}
_PARTS = {"half": "half", "side": "half", "part": "half", "third": "third", "quarter": "quarter"}


@dataclass(frozen=True)
class Op:
    """One operation. `amount` is in the operation's own unit (see `phrase`); None = size-based default."""

    name: str
    amount: float | None = None
    where: str | None = None  # crop side, flip axis, text position, "WxH" for resize
    color: str | None = None  # border / text / recolor target
    region: str | None = None  # where a tone, filter or color operation acts: a place ("the sky", "the left half")
    #                            or a colored thing ("the red cup", "the blue discs", "the red areas"); None: everywhere
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
        rf"\b(?:keep|leave) (?:only )?(?:the )?{_COLOR_WORD}(?:\s+([a-z]+))?[^,;.]*?(?:,|\band\b)\s*"
        r"(?:make |turn |convert )?"
        r"(?:everything else|the rest|all else)[^,;.]*?\b(?:blackwhite|gr[ae]y(?:scale)?|monochrome)\b"
        rf"|\bcolou?r splash (?:in |of )?{_COLOR_WORD}"
    )
    pieces = []
    position = 0
    for match in keep.finditer(low):
        pieces.append(low[position : match.start()])
        thing = _thing(match.group(2) or "")
        pieces.append(f" keep{match.group(1) or match.group(3)}_{thing.replace(' ', '_')} ")
        position = match.end()
    low = "".join(pieces) + low[position:]
    for clause in _clauses(low):
        found, strange = _read_clause(clause, quotes)
        if found:
            ops += found
            looks += [name for name, (pattern, _) in LOOKS.items() if re.search(pattern, clause)]
            unknown += [_restore(part, quotes) for part in strange]
        elif set(re.findall(r"[a-z0-9]+", clause)) - _FILLER:
            unknown.append(_restore(clause, quotes))
    return Plan(ops, unknown, looks)


def _clauses(text: str) -> list[str]:
    parts = re.split(r"\s*(?:[,;:]|[.!?](?=\s|$)|\band then\b|\bthen\b|\band\b|\balso\b|\bplus\b)\s*", text)
    return [part.strip() for part in parts if part.strip()]


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
        amount = OPERATIONS[name].default * _degree(clause)
    return Op(name, _clamp(name, sign * amount))


_TONES = [  # (operation, pattern that names it, words that raise it, words that lower it)
    ("brightness", r"\bbright|\blight(er|en)\b|\bexposure\b|\bdark(er|en)?\b|\bdim(mer)?\b",
     r"\bbright(er|en)\b|\blight(er|en)\b", r"\bdark(er|en)?\b|\bdim(mer)?\b"),
    ("contrast", r"\bcontrast", r"\bhigh(er)? contrast\b", r"\blow(er)? contrast\b|\bflat(ter)?\b"),
    ("saturation", r"\bsaturat|\bdesaturat|\bvivid|\bvibrant|\bcolou?rful|\bmuted\b|\bdull(er)?\b",
     r"\bvivid|\bvibrant|\bcolou?rful", r"\bdesaturat|\bmuted\b|\bdull(er)?\b"),
    ("warmth", r"\bwarm|\bcool(er)?\b|\bcold(er)?\b", r"\bwarm", r"\bcool(er)?\b|\bcold(er)?\b"),
]  # fmt: skip


def _read_clause(clause: str, quotes: list[str]) -> tuple[list[Op], list[str]]:
    """The operations of one clause, and the words in it that name a region no rule finds ("the water")."""
    keep = re.search(r"\bkeep(" + "|".join(COLORS) + r")_(\w+)\b", clause)
    if keep:
        return [Op("keep_color", region=f"the {keep.group(1)} {keep.group(2).replace('_', ' ')}")], []
    quote = re.search(r"\bquote(\d+)\b", clause)
    if quote and re.search(r"\b(add|write|put|place|caption|text|title|label|say|saying|reads?|print|stamp)\b", clause):
        return [_text_op(clause, quotes[int(quote.group(1))])], []
    ops = _looks(clause) + _filters(clause) + _border_or_recolor(clause) + _geometry_ops(clause)
    if not ops or any(OPERATIONS[op.name].kind not in ("tone", "filter", "color") for op in ops):
        return ops, []  # geometry, borders and text place themselves ("crop the left half")
    region, strange = _region(clause)
    if strange and region is None and not any(op.region for op in ops):
        return [], []  # "make the water bluer": no rule finds the water, so nothing is done (and it is said)
    return [op if op.region else replace(op, region=region) for op in ops], strange


def _region(clause: str) -> tuple[str | None, list[str]]:
    """Where a clause's tone, filter or color operations act (None: everywhere), and the region words in it that
    no rule finds ("the water", "the cat's eyes")."""
    region = next((place for pattern, place in _PLACE_WORDS if re.search(pattern, clause)), None)
    part = re.search(rf"\b({'|'.join(_SIDES)})[- ]({'|'.join(_PARTS)})\b", clause)
    part = part or re.search(rf"\b({'|'.join(_SIDES)}) (of) (?:the )?(?:image|photo|picture)\b", clause)
    strange = []
    if part:
        if region:  # "the top half of the sky": one region at a time, and the other is said
            strange.append(f"'{region}' (one region at a time: I used the {_SIDES[part.group(1)]} part)")
        region = f"the {_SIDES[part.group(1)]} {_PARTS.get(part.group(2), 'half')}"
    colored = re.search(rf"\b(?:the|all|every)\s+{_COLOR_WORD}(?:\s+([a-z]+))?", clause)
    if region is None and colored:
        word = colored.group(2) or ""
        plural = colored.group(0).split()[1].endswith("s")  # "the reds brighter": every red pixel
        region = f"the {colored.group(1)} {'areas' if plural or _looks(word) or _filters(word) else _thing(word)}"
    named = set(region.split()[1:]) if region else set()
    for match in re.finditer(_OBJECT, clause):
        word = match.group(2)
        if word in _WHOLE | _FILLER | named | set(_SIDES) | set(COLORS) or re.fullmatch(_COLOR_WORD, word):
            continue
        if not any(re.search(pattern, word) for pattern, _ in _PLACE_WORDS):
            strange.append(f"'{match.group(1)}' (no rule finds that region)")
    return region, strange


def _thing(word: str) -> str:
    """What follows a color word, as a region's noun: a shape ("ball" → "disc"), a thing ("cup"), or "areas" for
    every pixel of the color ("the reds", "the red areas", "everything red")."""
    if not word or word in _AREAS or word in _FILLER or re.fullmatch(_COLOR_WORD, word) or word in _WHOLE:
        return "areas"
    if word.removesuffix("s") in SHAPES:
        return _shape(word)
    return word


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
        ops.append(Op("sepia", _strength("sepia", clause, most=1.0)))
    if re.search(r"\binvert|\bnegative\b", clause):
        ops.append(Op("invert", 1.0))
    if re.search(r"\bblur|\bsoften|\bout of focus\b|\bdefocus", clause):
        ops.append(Op("blur", _number(clause, r"px|pixels?"), degree=_degree(clause)))
    if re.search(r"\bsharp|\bcrisp", clause):
        ops.append(Op("sharpen", _strength("sharpen", clause)))
    if re.search(r"\bvignett|\bdarken the (corners|edges)\b", clause):
        ops.append(Op("vignette", _strength("vignette", clause)))
    if re.search(r"\bposteri[sz]|\bfewer colou?rs\b", clause):
        levels = _number(clause, r"levels?|colou?rs|tones") or round(OPERATIONS["posterize"].default / _degree(clause))
        ops.append(Op("posterize", _clamp("posterize", levels)))
    if re.search(r"\bpixel(ate|ated|ise|ize|ized|ation)\b|\bmosaic\b|\b8-?bit\b", clause):
        ops.append(Op("pixelate", _number(clause, r"px|pixels?"), degree=_degree(clause)))
    return ops


def _strength(name: str, clause: str, most: float = 3.0) -> float:
    """A strength in percent ("at 60%"), or the operation's default scaled by the degree words (at most `most`)."""
    return _clamp(name, _percent(clause) or OPERATIONS[name].default * min(_degree(clause), most))


def _border_or_recolor(clause: str) -> list[Op]:
    """A border (in the last color named); or a recolor from the first color named to the second, or of a region
    to the one color named ("make the sky orange")."""
    colors = re.findall(_COLOR_WORD, clause)
    if re.search(r"\bborder\b|\bframe\b", clause):
        color = colors[-1] if colors else "white"
        return [Op("border", _number(clause, r"px|pixels?"), color=color, degree=_degree(clause))]
    if not re.search(r"\b(make|turn|change|recolou?r|paint|replace|swap|colou?r|tint)\b", clause):
        return []
    if len(set(colors)) >= 2:
        after = re.search(rf"\b{colors[0]}s?(?:\s+([a-z']+))?", clause)  # "the blue disc": that object only
        return [Op("recolor", color=colors[1], region=f"the {colors[0]} {_thing(after.group(1) or '')}")]
    place, _ = _region(clause)
    if colors and place in PLACES:
        return [Op("recolor", color=colors[-1], region=place)]
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
        percent = next((v for k, v in size.items() if re.search(rf"\b{k}\b", clause)), OPERATIONS["text"].default)
    return Op("text", _clamp("text", percent), where=where, color=colors[0] if colors else "white", text=text)


def _geometry_ops(clause: str) -> list[Op]:
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
    low, high = OPERATIONS[name].limits
    return round(min(high, max(low, value)), 3)


# -- amounts that depend on the image, and the canonical text ---------------------------------------------


def resolve(op: Op, size: tuple[int, int]) -> Op:
    """The same operation with a pixel amount for size-based operations (blur radius, block, border)."""
    if op.name not in SIZED or op.amount is not None:
        return op
    facts = OPERATIONS[op.name]
    pixels = round(max(size) * (facts.per_side or 0.0) * op.degree)
    return replace(op, amount=float(max(1.0, facts.limits[0], pixels)))


def applied(op: Op) -> Op:
    """What the editor actually applies: a cautious share of a vague look, everything else as written."""
    if not op.vague or op.amount is None:
        return op
    return replace(op, amount=round(op.amount * CAUTIOUS, 3), vague=False)


def phrase(op: Op) -> str:
    """Explicit editor text for one operation; `read` reads it back to the same operation."""
    text = _phrase(op)
    if op.region and op.name not in ("recolor", "keep_color"):
        return f"{text} in {op.region}"
    return text


def _phrase(op: Op) -> str:
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
    return _phrase_layout(op, amount, pct)


def _phrase_layout(op: Op, amount: float, pct: str) -> str:
    """`phrase` for the operations that place something: borders, geometry, text, recolors of a region."""
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
            return f"make {op.region} {op.color}"
        case "keep_color":
            return f"keep only {(op.region or '').removesuffix(' areas')} and make everything else black and white"
    raise ValueError(f"unknown operation {op.name}")


def join(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# -- a person's feedback on an edit ---------------------------------------------------------------------------

NUDGE = 0.5  # "more" multiplies an amount by 1 + NUDGE × degree: ×1.5, "a little more" ×1.25, "much more" ×2
_DROP = r"\b(undo|remove|drop|no|without|get rid of|lose|take (?:out|off|away)|don'?t|do not|skip)\b"
_KEEP = r"\b(keep|leave|retain|preserve|stays?|perfect|good|great|fine|nice|love)\b"
_MORE = r"\b(more|stronger|increase|boost|raise|extra|further|intensify|not enough|too (?:weak|subtle|little|faint))\b"
_TOO = r"\b(too|overdone|too much|too strong)\b"
_LESS = (
    r"\b(less|fewer|lower|weaker|reduce|decrease|subtler|softer|tone (?:it )?down|dial (?:it )?(?:back|down)|not so)\b"
)


@dataclass(frozen=True)
class Nudge:
    """One clause of a person's feedback: what to do with operations of the prompt that made the edit."""

    words: str  # the clause as written
    action: str  # "more", "less", "too" (less of what it names), "toward" (a direction: "warmer"), "drop", "keep"
    ops: tuple[Op, ...]  # the operations its words name, amounts as `read` gives them; () means every operation
    factor: float = 1 + NUDGE  # more / less multiply / divide an amount by this


def read_feedback(feedback: str) -> tuple[list[Nudge], list[str]]:
    """Read feedback ("less sepia, keep the vignette", "undo the crop", "more", "not so much") with the same
    reader as instructions: the operations each clause names, and what to do with them; and the clauses that
    name nothing to act on."""
    nudges, unknown = [], []
    text = re.sub(r"\bbut\b", ",", " ".join(feedback.lower().split()))
    text = re.sub(r"\bblack[- ](and|&|n)[- ]white\b", "blackwhite", text)
    for clause in _clauses(text):
        ops = tuple(dict((op.name, op) for op in read(clause.replace("blackwhite", "black and white")).ops).values())
        factor = 1 + NUDGE * _degree(re.sub(r"\b(not so|too|so) much\b", "", clause))
        action = next(
            (name for name, pattern in (("drop", _DROP), ("keep", _KEEP), ("more", _MORE), ("too", _TOO),
                                         ("less", _LESS)) if re.search(pattern, clause)),
            "toward" if ops else None,
        )  # fmt: skip
        if action is None or (action in ("drop", "toward") and not ops):
            if set(re.findall(r"[a-z0-9]+", clause)) - _FILLER:
                unknown.append(clause)
            continue
        nudges.append(Nudge(clause, action, ops, factor))
    return nudges, unknown


def follow(ops: list[Op], nudge: Nudge) -> tuple[list[Op], str]:
    """The operations after one clause of feedback, and a sentence saying what changed (or why nothing did)."""
    if nudge.action == "drop":
        names = {op.name for op in nudge.ops}
        gone = [op for op in ops if op.name in names]
        if not gone:
            return ops, f"'{nudge.words}': there is no {join(sorted(names))} in the prompt to undo"
        return [
            op for op in ops if op.name not in names
        ], f"'{nudge.words}': {join([phrase(op) for op in gone])} dropped"
    if not nudge.ops:  # "more", "not so much": every amount
        up = nudge.action == "more"
        changed = [(op, _times(op, nudge.factor if up else 1 / nudge.factor)) for op in ops]
        moved = [_step(old, new) for old, new in changed if new is not None and new != old]
        result = [new if new is not None else old for old, new in changed]
        if nudge.action == "keep":
            return ops, f"'{nudge.words}': everything stays as it is"
        if not moved:
            return ops, f"'{nudge.words}': the prompt has no amount to change"
        return result, f"'{nudge.words}': every amount {'×' if up else '÷'}{nudge.factor:g} ({', '.join(moved)})"
    sentences = []
    for named in nudge.ops:
        ops, said = _follow_one(ops, named, nudge)
        sentences.append(said)
    return ops, f"'{nudge.words}': " + "; ".join(sentences)


def _follow_one(ops: list[Op], named: Op, nudge: Nudge) -> tuple[list[Op], str]:
    present = next((op for op in ops if op.name == named.name), None)
    signed = OPERATIONS[named.name].limits[0] < 0
    if nudge.action == "keep":
        return ops, (
            f"{_short(present)} stays" if present else f"there is no {named.name} in the prompt; nothing to keep"
        )
    if present is None:
        if nudge.action in ("more", "toward") or (nudge.action == "less" and signed):
            return [*ops, named], f"{phrase(named)} added"
        if nudge.action == "too" and signed and named.amount:
            opposite = replace(named, amount=-named.amount)
            return [*ops, opposite], f"{phrase(opposite)} added"
        return ops, f"there is no {named.name} in the prompt to lessen"
    more = nudge.action == "more" or (
        nudge.action == "toward" and (signed and (named.amount or 0) * (present.amount or 0) > 0 or not signed)
    )
    new = _times(present, nudge.factor if more else 1 / nudge.factor)
    if new is None:
        return ops, f"{phrase(present)} has no amount I can make {'stronger' if more else 'weaker'}"
    return [
        new if op is present else op for op in ops
    ], f"{_short(present)} → {_short(new)} ({'×' if more else '÷'}{nudge.factor:g})"


def _times(op: Op, factor: float) -> Op | None:
    """The operation with its amount multiplied by `factor` (posterize: its levels divided), within its range;
    None for the operations that have no amount to scale (geometry, text, colors, black and white)."""
    facts = OPERATIONS[op.name]
    if op.amount is None or facts.kind in ("geometry", "color") or op.name in ("text", "grayscale", "invert"):
        return None
    amount = op.amount / factor if op.name == "posterize" else op.amount * factor
    digits = 0 if op.name == "posterize" else 1 if op.name in SIZED else 3
    return replace(op, amount=round(_clamp(op.name, amount), digits), vague=False)


def _step(old: Op, new: Op) -> str:
    limits = OPERATIONS[new.name].limits
    limit = ", as far as it goes" if new.amount in limits else ""
    return f"{_short(old)} → {_short(new)}{limit}"


def _short(op: Op) -> str:
    """An operation's name and amount, for sentences: "sepia 32%", "blur 4 px", "posterize 4 levels"."""
    amount = op.amount or 0.0
    if op.name in SIZED:
        return f"{op.name} {amount:g} px"
    if op.name == "posterize":
        return f"posterize {amount:g} levels"
    return f"{op.name} {amount * 100:+.0f}%" if OPERATIONS[op.name].limits[0] < 0 else f"{op.name} {amount * 100:.0f}%"
