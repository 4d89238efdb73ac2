"""The classic thinker answers a person's feedback truthfully: it reads the feedback with the instruction reader, its
next prompt moves the amounts relative to the prompt that made the edit, and what it cannot act on it says."""

import re

import numpy as np
import pytest
import skimage.data
from PIL import Image

from thinkedit.instructions import read

OLD = "apply a sepia tone at 80% strength and add a vignette at 30% strength"


@pytest.fixture(scope="module")
def cat() -> Image.Image:
    return Image.fromarray(skimage.data.chelsea())


def sepia_strength(source: Image.Image, edited: Image.Image) -> float:
    """How far the centre's colors moved toward the sepia tint (0: not at all, 1: all the way), by chromaticity."""
    tint = np.array([1.0, 0.78, 0.55]) / 2.33
    a, b = (np.asarray(image, np.float64)[100:200, 150:300] + 1 for image in (source, edited))
    start, end = a / a.sum(axis=2, keepdims=True), b / b.sum(axis=2, keepdims=True)
    way = tint - start
    return float(((end - start) * way).sum() / (way * way).sum())


def corners(image: Image.Image) -> float:
    x = np.asarray(image, np.float64)
    return float(np.concatenate([x[:30, :30], x[:30, -30:], x[-30:, :30], x[-30:, -30:]]).mean())


def amount(prompt: str, words: str) -> float:
    return float(re.search(rf"{words} (?:at |by )?(\d+)%", prompt).group(1))


def answer(thinker, cat, edited, feedback, prompt=OLD, instruction="make it look old"):
    return thinker.critique(cat, edited, instruction, prompt, feedback=feedback)


def test_less_sepia_lowers_the_measured_sepia_and_keeps_the_vignette(editor, thinker, cat):
    before = editor.edit(cat, OLD, seed=0)
    critique = answer(thinker, cat, before, "less sepia, keep the vignette")
    assert amount(critique.refined_prompt, "sepia tone") < 80 and amount(critique.refined_prompt, "vignette") == 30
    assert "'less sepia': sepia 80% → sepia 53% (÷1.5)" in critique.reasoning
    assert "'keep the vignette': vignette 30% stays" in critique.reasoning
    after = editor.edit(cat, critique.refined_prompt, seed=0)
    assert sepia_strength(cat, after) < sepia_strength(cat, before) - 0.15
    assert corners(after) == pytest.approx(corners(before), rel=0.05)


def test_less_sepia_after_a_vague_look_is_relative_to_what_the_editor_applied(editor, thinker, cat):
    """ "make it look old" gave a cautious sepia; "less sepia" asks for less than that, not less than the recipe."""
    before = editor.edit(cat, "make it look old", seed=0)
    critique = answer(thinker, cat, before, "less sepia", prompt="make it look old")
    applied = next(op.amount for op in read("make it look old").ops if op.name == "sepia") * 0.4
    assert amount(critique.refined_prompt, "sepia tone") < applied * 100
    assert sepia_strength(cat, editor.edit(cat, critique.refined_prompt, seed=0)) < sepia_strength(cat, before)


@pytest.mark.parametrize(
    ("feedback", "factor"),
    [("more", 1.5), ("not so much", 1 / 1.5), ("a little more", 1.25), ("much less", 0.5), ("stronger", 1.5)],
)
def test_more_and_less_scale_every_amount(editor, thinker, cat, feedback, factor):
    critique = answer(thinker, cat, editor.edit(cat, OLD, seed=0), feedback)
    assert amount(critique.refined_prompt, "sepia tone") == min(100, round(80 * factor))
    assert amount(critique.refined_prompt, "vignette") == round(30 * factor)


def test_undo_the_crop_and_a_direction_word(editor, thinker, cat):
    prompt = "crop the left half and make it warmer by 20%"
    edited = editor.edit(cat, prompt, seed=0)
    undone = answer(thinker, cat, edited, "undo the crop", prompt=prompt, instruction="crop the left half")
    assert undone.refined_prompt == "make it warmer by 20%" and "crop to the left 50% dropped" in undone.reasoning
    cooler = answer(thinker, cat, edited, "cooler", prompt=prompt, instruction="make it warmer")
    assert amount(cooler.refined_prompt, "warmer") < 20 and "crop to the left 50%" in cooler.refined_prompt
    darker = answer(thinker, cat, edited, "too bright", prompt=prompt, instruction="make it warmer")
    assert "decrease brightness by 25%" in darker.refined_prompt


def test_feedback_it_cannot_act_on_is_said_plainly(editor, thinker, cat):
    edited = editor.edit(cat, OLD, seed=0)
    nonsense = answer(thinker, cat, edited, "make the cat smile")
    assert "I cannot act on 'make the cat smile'" in nonsense.reasoning
    assert "Nothing in the feedback is something I can act on" in nonsense.reasoning
    assert nonsense.refined_prompt == OLD
    mixed = answer(thinker, cat, edited, "less sepia and give her a hat")
    assert amount(mixed.refined_prompt, "sepia tone") < 80 and "I cannot act on 'give her a hat'" in mixed.reasoning
    nothing = answer(thinker, cat, edited, "less blur")
    assert "there is no blur in the prompt to lessen" in nothing.reasoning and nothing.refined_prompt == OLD


def test_feedback_changes_the_next_prompt_not_the_scores(editor, thinker, cat):
    edited = editor.edit(cat, OLD, seed=0)
    plain = thinker.critique(cat, edited, "make it look old", OLD)
    steered = answer(thinker, cat, edited, "more")
    assert (steered.semantic, steered.quality) == (plain.semantic, plain.quality)
    assert steered.refined_prompt != plain.refined_prompt
    assert steered.raw.count("<score>") == 1 and "follows your feedback" in steered.reasoning
