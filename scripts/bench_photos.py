"""Does the offline critic tell the truth on real photographs? The classic editor and thinker, through the real
loop, on the photos scikit-image ships, each turn checked by a measurement of our own.

Each case names what a person would look at: boxes drawn by hand on the photo (the spacesuit, the face, the sky,
the table…) and what must hold there (mostly blue now; unchanged; darker). The check never asks the editor or the
critic anything. Every turn of every run is counted:

- confirmed: the check passes and the critic scored semantic ≥ 8;
- flattered: the critic scored semantic ≥ 8 although the check says the edit failed (target: 0);
- honest failure: the check fails and the critic scored below 8;
- under-rated: the check passes but the critic scored below 8;
- impossible reported: an edit the offline editor cannot do (a hat, the table) whose first turn the critic scores
  below 8 with a sentence saying it cannot be done.

    python scripts/bench_photos.py [--max-turns 3] [--save FOLDER]

Needs scikit-image (the `test` extra); only the photos bundled in its wheel are used, nothing is downloaded.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from thinkedit.config import Settings
from thinkedit.loop import make_request, run
from thinkedit.registry import build_backend

Box = tuple[int, int, int, int]  # left, top, right, bottom in the photo's own pixels
Check = Callable[[np.ndarray, np.ndarray], tuple[bool, str]]

# Hand-drawn boxes, each well inside one thing (checked by eye on the photos).
SUIT = [(40, 300, 110, 460), (290, 250, 340, 330), (110, 240, 160, 290)]
FACE, HAIR, WALL, FLAG = (185, 80, 265, 170), (170, 25, 290, 60), (300, 20, 370, 130), (0, 0, 70, 215)
STRIPES = (0, 300, 14, 500)  # the flag's red and white stripes beside the suit's sleeve
CUP, SAUCER = [(185, 150, 215, 230)], [(100, 250, 170, 330), (400, 200, 460, 280)]
TABLE, CREMA = [(440, 20, 600, 100), (0, 120, 60, 220), (480, 300, 600, 400)], (240, 110, 340, 170)
# The wood just outside the saucer's rim, where a recolor that grows through the reddish grain spills first.
RIM = [
    (475, 285, 495, 315),
    (458, 320, 480, 345),
    (430, 350, 455, 375),
    (395, 378, 420, 398),
    (55, 235, 72, 275),
    (60, 290, 90, 330),
    (490, 180, 530, 250),
]
SKY = [(100, 20, 170, 110), (220, 30, 290, 120), (350, 30, 420, 120), (480, 150, 540, 280)]
ROCKET, PAD = (314, 200, 328, 330), (270, 412, 370, 427)
TANK, FENDER, BIN = (360, 180, 440, 220), (560, 275, 620, 300), (540, 190, 600, 240)
GARAGE, FLOOR = (40, 20, 100, 80), (300, 420, 500, 480)
CAT_QUARTERS = [(0, 0, 225, 150), (225, 0, 451, 150), (0, 150, 225, 300), (225, 150, 451, 300)]


def crop(x: np.ndarray, box: Box) -> np.ndarray:
    left, top, right, bottom = box
    return x[top:bottom, left:right].astype(np.float32)


def hsv(x: np.ndarray) -> np.ndarray:
    """Hue in degrees, saturation and value in 0..1."""
    h = np.asarray(Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).convert("HSV"), np.float32)
    return np.stack([h[..., 0] * 360 / 256, h[..., 1] / 255, h[..., 2] / 255], axis=-1)


def share_of_hue(x: np.ndarray, low: float, high: float, saturation: float = 0.25) -> float:
    h = hsv(x)
    return float(((h[..., 0] >= low) & (h[..., 0] <= high) & (h[..., 1] >= saturation) & (h[..., 2] >= 0.12)).mean())


def change(source: np.ndarray, result: np.ndarray, box: Box) -> float:
    return float(np.abs(crop(result, box) - crop(source, box)).mean())


def luma(x: np.ndarray) -> float:
    return float((x @ np.array([0.299, 0.587, 0.114], np.float32)).mean())


def same_size(source: np.ndarray, result: np.ndarray) -> bool:
    return source.shape == result.shape


def recolored(into: tuple[float, float], targets: list[Box], kept: list[Box]) -> Check:
    """Most of each target box is now of the hue range `into`; every kept box is as it was."""

    def check(source: np.ndarray, result: np.ndarray) -> tuple[bool, str]:
        if not same_size(source, result):
            return False, "the result has another size"
        shares = [share_of_hue(crop(result, box), *into) for box in targets]
        moved = [change(source, result, box) for box in kept]
        ok = min(shares) >= 0.6 and max(moved) < 6
        return ok, f"target {min(shares) * 100:.0f}% recolored, kept areas moved ≤ {max(moved):.1f}"

    return check


def changed_here_only(targets: list[Box], kept: list[Box], how: Callable[[np.ndarray, np.ndarray], bool]) -> Check:
    """`how(before, after)` holds in every target box; every kept box is as it was."""

    def check(source: np.ndarray, result: np.ndarray) -> tuple[bool, str]:
        if not same_size(source, result):
            return False, "the result has another size"
        done = [how(crop(source, box), crop(result, box)) for box in targets]
        moved = max((change(source, result, box) for box in kept), default=0.0)
        return all(done) and moved < 6, f"target boxes {sum(done)}/{len(done)}, kept areas moved ≤ {moved:.1f}"

    return check


def everywhere(how: Callable[[np.ndarray, np.ndarray], bool], boxes: list[Box]) -> Check:
    return changed_here_only(boxes, [], how)


def gray(before: np.ndarray, after: np.ndarray) -> bool:
    return float(hsv(after)[..., 1].mean()) <= 0.05


def darker(before: np.ndarray, after: np.ndarray) -> bool:
    return luma(after) <= 0.85 * luma(before)


def visibly_changed(before: np.ndarray, after: np.ndarray) -> bool:
    return float(np.abs(after - before).mean()) >= 8


def warmer(before: np.ndarray, after: np.ndarray) -> bool:
    return float((after[..., 0] - after[..., 2]).mean() - (before[..., 0] - before[..., 2]).mean()) >= 5


def old(source: np.ndarray, result: np.ndarray) -> tuple[bool, str]:
    """A sepia photograph: nearly every pixel warm-toned (red ≥ green ≥ blue) and the strong orange of the suit
    muted to at most three quarters of its saturation."""
    if not same_size(source, result):
        return False, "the result has another size"
    x = result.astype(np.float32)
    toned = float(((x[..., 0] >= x[..., 1]) & (x[..., 1] >= x[..., 2] - 2)).mean())
    muted = max(float(hsv(crop(x, b))[..., 1].mean() / hsv(crop(source, b))[..., 1].mean()) for b in SUIT)
    return toned >= 0.95 and muted <= 0.75, f"{toned * 100:.0f}% warm-toned, suit saturation ×{muted:.2f}"


def contrast_up(low: float, high: float) -> Check:
    def check(source: np.ndarray, result: np.ndarray) -> tuple[bool, str]:
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        ratio = float((result.astype(np.float32) @ weights).std() / (source.astype(np.float32) @ weights).std())
        return low <= ratio <= high, f"luma spread ×{ratio:.2f}"

    return check


def geometry(expected: Callable[[Image.Image], Image.Image]) -> Check:
    def check(source: np.ndarray, result: np.ndarray) -> tuple[bool, str]:
        want = np.asarray(expected(Image.fromarray(source)))
        if want.shape != result.shape:
            return False, f"size {result.shape[1]}×{result.shape[0]}, asked {want.shape[1]}×{want.shape[0]}"
        difference = float(np.abs(want.astype(np.float32) - result).mean())
        return difference < 3, f"mean difference from the asked geometry {difference:.1f}"

    return check


@dataclass
class Case:
    photo: str
    instruction: str
    check: Check
    possible: bool = True  # False: the offline editor cannot do it; the critic must say so


def photo(name: str) -> np.ndarray:
    import skimage.data

    return skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()


CASES = [
    Case("astronaut", "make the orange spacesuit blue", recolored((190, 260), SUIT, [FACE, HAIR, WALL, FLAG, STRIPES])),
    Case("coffee", "make the red cup blue", recolored((190, 260), CUP + SAUCER, [*TABLE, *RIM, CREMA])),
    Case("motorcycle", "make the red motorcycle blue", recolored((190, 260), [TANK, FENDER], [BIN, GARAGE, FLOOR])),
    Case("rocket", "make the sky a warm sunset orange", recolored((10, 50), SKY, [ROCKET, PAD])),
    Case("rocket", "make the sky more dramatic", changed_here_only(SKY, [ROCKET, PAD], visibly_changed)),
    Case("rocket", "make the sky darker", changed_here_only(SKY, [ROCKET, PAD], darker)),
    Case("astronaut", "make the top half black and white", changed_here_only([FACE, WALL, HAIR], SUIT[:1], gray)),
    Case("astronaut", "make the background black and white", changed_here_only([WALL, FLAG], [FACE, *SUIT], gray)),
    Case("coffee", "make it black and white", everywhere(gray, [*TABLE, *CUP, CREMA])),
    Case("chelsea", "make it warmer", everywhere(warmer, CAT_QUARTERS)),
    Case("astronaut", "make it look old", old),
    Case("coffee", "increase contrast by 30%", contrast_up(1.15, 1.45)),
    Case("rocket", "rotate 90 degrees clockwise", geometry(lambda i: i.transpose(Image.Transpose.ROTATE_270))),
    Case("chelsea", "crop the left half", geometry(lambda i: i.crop((0, 0, round(i.width / 2), i.height)))),
    Case("astronaut", "add a hat", everywhere(visibly_changed, [FACE]), possible=False),
    Case("astronaut", "make the flag black and white", changed_here_only([FLAG], [FACE, *SUIT], gray), False),
    Case("coffee", "make the table darker", changed_here_only(TABLE, [*CUP, *SAUCER], darker), possible=False),
    Case("chelsea", "make the cat's eyes blue", everywhere(visibly_changed, [(140, 95, 200, 140)]), False),
    Case("rocket", "add a full moon in the sky", everywhere(visibly_changed, [SKY[0]]), possible=False),
    Case("coffee", "remove the spoon", everywhere(visibly_changed, [(330, 240, 390, 310)]), False),
]

SAYS_CANNOT = re.compile(r"cannot|can't|could not|not understood|don't know|do not know|no region", re.IGNORECASE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-turns", type=int, default=3)
    parser.add_argument("--save", type=Path, help="save each turn's result here as PNG, to look at")
    args = parser.parse_args()
    settings = Settings(editor="classic", thinker="classic")
    editor, thinker = build_backend("editor", settings), build_backend("thinker", settings)
    counts = dict.fromkeys(("confirmed", "flattered", "honest failure", "under-rated"), 0)
    impossible = reported = 0
    print(f"{'case':<52} {'turn':>4} {'scores':>9}  check")
    for case in CASES:
        source = photo(case.photo)
        request = make_request(Image.fromarray(source), case.instruction, max_turns=args.max_turns, threshold=8.0)
        *_, finished = run(editor, thinker, request)
        for turn in finished.trajectory.turns:
            result = np.asarray(turn.image.convert("RGB"))
            passed, why = case.check(source, result)
            semantic, quality = turn.critique.semantic or 0.0, turn.critique.quality or 0.0
            high = semantic >= 8
            verdict = {
                (True, True): "confirmed",
                (False, True): "flattered",
                (False, False): "honest failure",
                (True, False): "under-rated",
            }[(passed, high)]
            counts[verdict] += 1
            if not case.possible and turn.index == 1:
                impossible += 1
                said = not high and bool(SAYS_CANNOT.search(turn.critique.reasoning))
                reported += said
                verdict += ", impossible: " + ("reported" if said else "NOT reported")
            label = f"{case.photo}: {case.instruction}"
            print(f"{label[:52]:<52} {turn.index:>4} {semantic:>4g}/{quality:<4g}  {verdict} ({why})")
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                slug = re.sub(r"\W+", "_", f"{case.photo}_{case.instruction}")[:60]
                turn.image.save(args.save / f"{slug}_turn{turn.index}.png")
    print()
    print(
        f"turns: {counts['confirmed']} confirmed, {counts['flattered']} flattered (scored ≥ 8 but the check failed), "
        f"{counts['honest failure']} honest failures, {counts['under-rated']} under-rated"
    )
    print(f"impossible edits reported as such: {reported}/{impossible}")


if __name__ == "__main__":
    main()
