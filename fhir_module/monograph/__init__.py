"""The monograph parser: Markdown monograph → typed model with addressable sentences."""

from .model import FAQ, Block, Bullet, BulletList, Monograph, MonographError, Paragraph, Section, Sentence
from .parser import load_monograph, parse_monograph, parse_monograph_once
from .text import durations_in_days, numbers_in, slugify, split_sentences, strip_emphasis

__all__ = [
    "FAQ", "Block", "Bullet", "BulletList", "Monograph", "MonographError", "Paragraph", "Section",
    "Sentence", "durations_in_days", "load_monograph", "parse_monograph", "parse_monograph_once", "numbers_in",
    "slugify", "split_sentences", "strip_emphasis",
]
