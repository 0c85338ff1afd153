"""Caption variants: the condition-richness ablation (captioning a folder: ``textok.data.captioning``).

``caption_variant(caption, variant, class_name)``: the paper's ablation on how much the text
says: ``"class"`` (class name only), ``"short"`` ("a photo of a {class}"), ``"name"`` (the
caption's first clause, up to the first ";": the emoji name of "name; category, subcategory"),
``"words25"`` (first 25 words), ``"full"`` (first 75 words, what the encoders see).

Any other name (lower-case letters, digits, ``_``) is a **field variant**: the sample's
``caption_<variant>`` field of ``captions.jsonl`` (a data set that writes its own variants, e.g.
the scenes' ``caption_shapes``), cut at 75 words; a sample without that field is an error.
"""

from __future__ import annotations

import re
from typing import Mapping

from ..text import prepare_caption

CAPTION_VARIANTS = ("full", "words25", "short", "class", "name")
_FIELD_VARIANT = re.compile(r"[a-z0-9_]+")


def is_field_variant(variant: str) -> bool:
    """True for a variant read from a ``caption_<variant>`` field (any valid name not built in)."""
    return variant not in CAPTION_VARIANTS and isinstance(variant, str) and bool(_FIELD_VARIANT.fullmatch(variant))


def check_caption_variant(variant: str) -> str:
    """``variant`` if it is built in or a valid field variant name, else a ValueError."""
    if variant in CAPTION_VARIANTS or is_field_variant(variant):
        return variant
    raise ValueError(f"caption variant must be one of {CAPTION_VARIANTS} or the name of a caption_<variant> field "
                     f"(lower-case letters, digits, _), got {variant!r}")


def caption_variant(caption: str, variant: str = "full", class_name: str | None = None,
                    fields: Mapping[str, str] | None = None) -> str:
    """One caption rewritten for the condition-richness ablation (see the module docstring);
    ``fields``: the sample's field variants (``{"shapes": text}`` for a ``caption_shapes`` field)."""
    if is_field_variant(variant):
        text = (fields or {}).get(variant)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"caption variant {variant!r} needs a non-empty 'caption_{variant}' field per sample")
        return prepare_caption(text, 75)
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
    raise ValueError(f"unknown caption variant {variant!r}; choose from {CAPTION_VARIANTS} or a caption_<variant> "
                     f"field's name")


def caption_variants(caption: str, class_name: str | None = None) -> dict[str, str]:
    """All variants of one caption (``short``/``class`` only when a class name is known)."""
    names = CAPTION_VARIANTS if class_name else tuple(v for v in CAPTION_VARIANTS if v not in ("short", "class"))
    return {v: caption_variant(caption, v, class_name) for v in names}


__all__ = ["CAPTION_VARIANTS", "caption_variant", "caption_variants", "check_caption_variant", "is_field_variant"]
