"""Every image prompt, one shape or two: `parse_prompt` reads either form (DESIGN.md §1)."""

from __future__ import annotations

from app.world.compose import PairPrompt, is_pair_prompt, parse_pair_words
from app.world.scenes import Prompt, parse_object_prompt, prompt_words

ImagePrompt = Prompt | PairPrompt


def parse_prompt(text: str) -> ImagePrompt:
    """Parse a prompt forgivingly: `a large red circle at the top left`, `a red circle left of a blue square`,
    `a red circle and a blue square`, `two red circles`; the empty prompt is the unconditional one.
    PromptError says what is wrong and lists the words the model knows."""
    words = prompt_words(text)
    if is_pair_prompt(words):
        return parse_pair_words(words)
    return parse_object_prompt(text)
