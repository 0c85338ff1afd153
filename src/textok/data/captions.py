"""Caption variants: the condition-richness ablation (captioning a folder: ``textok.data.captioning``).

``caption_variant(caption, variant, class_name)``: the paper's ablation on how much the text
says: ``"class"`` (class name only), ``"short"`` ("a photo of a {class}"), ``"name"`` (the
caption's first clause, up to the first ";": the emoji name of "name; category, subcategory"),
``"words25"`` (first 25 words), ``"full"`` (first 75 words, what the encoders see).
"""

from __future__ import annotations

from ..text import prepare_caption

CAPTION_VARIANTS = ("full", "words25", "short", "class", "name")


def caption_variant(caption: str, variant: str = "full", class_name: str | None = None) -> str:
    """One caption rewritten for the condition-richness ablation (see the module docstring)."""
    if variant == "full":
        return prepare_caption(caption, 75)
    if variant == "words25":
        return prepare_caption(caption, 25)
    if variant == "name":
        return prepare_caption(caption.split(";", 1)[0], 75)
    if variant in ("short", "class"):
        if not class_name:
            raise ValueError(f"caption variant {variant!r} needs a class name")
        name = class_name.replace("_", " ").strip()
        return name if variant == "class" else f"a photo of a {name}"
    raise ValueError(f"unknown caption variant {variant!r}; choose from {CAPTION_VARIANTS}")


def caption_variants(caption: str, class_name: str | None = None) -> dict[str, str]:
    """All variants of one caption (``short``/``class`` only when a class name is known)."""
    names = CAPTION_VARIANTS if class_name else tuple(v for v in CAPTION_VARIANTS if v not in ("short", "class"))
    return {v: caption_variant(caption, v, class_name) for v in names}


__all__ = ["CAPTION_VARIANTS", "caption_variant", "caption_variants"]
