"""The monograph as a small HTML page, so the links on cards open the very sentences they quote.

Each section gets the id its anchor uses (`#dosage`), the same ids the cards link to. Built from the
parsed model, not from the Markdown, so what a clinician reads is what the rules were checked on.
"""

from __future__ import annotations

from html import escape

from .model import FAQ, Bullet, BulletList, Monograph, Paragraph

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "h2{border-bottom:1px solid #ccc;padding-bottom:.2rem}:target{background:#fff7d6}"
)


def _bullet(bullet: Bullet) -> str:
    label = f"<strong>{escape(bullet.category)}:</strong> " if bullet.category else ""
    return f"<li>{label}{escape(bullet.text)}</li>"


def _block(block: object) -> str:
    if isinstance(block, Paragraph):
        label = f"<strong>{escape(block.label)}:</strong> " if block.label else ""
        return f"<p>{label}{escape(block.text)}</p>"
    if isinstance(block, BulletList):
        heading = f"<h3>{escape(block.heading)}</h3>" if block.heading else ""
        return heading + "<ul>" + "".join(_bullet(item) for item in block.items) + "</ul>"
    if isinstance(block, FAQ):
        return f"<p><strong>Q: {escape(block.question)}</strong><br>A: {escape(block.answer)}</p>"
    return ""


def render_html(monograph: Monograph) -> str:
    sections = "".join(
        f'<section id="{escape(section.id)}"><h2>{escape(section.title)}</h2>'
        + "".join(_block(block) for block in section.blocks)
        + "</section>"
        for section in monograph.sections
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(monograph.title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(monograph.title)}</h1>{sections}</body></html>"
    )
