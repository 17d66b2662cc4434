"""Parse a monograph (Markdown with YAML front matter) into the typed model.

The template: optional `---` front matter, one `# Title`, then `###` sections holding paragraphs
(optionally led by a bold `**Label:**`), bold headings over bullet lists, bullets with a
`**Category:**` or `Category:` prefix, and FAQ bullets `* **Q: question?** A: answer`.
Anything else is refused with a MonographError naming the line and section.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .model import FAQ, Block, Bullet, BulletList, Monograph, MonographError, Paragraph, Section, Sentence
from .text import slugify, split_sentences, split_terms, strip_emphasis

_HEADING = re.compile(r"^(#{1,6})(\s.*)?$")
_BULLET = re.compile(r"^(\s*)[*+-](?:\s+(.*))?$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_UNSUPPORTED = [
    (re.compile(r"^\s*(```|~~~)"), "code blocks"),
    (re.compile(r"^\s*\|"), "tables"),
    (re.compile(r"^\s*>"), "block quotes"),
    (re.compile(r"^\s*<"), "HTML"),
    (re.compile(r"^\s*\d+[.)]\s"), "numbered lists"),
]
_LABEL = re.compile(r"^\*\*(?P<label>[^*]+?)(?::\*\*|\*\*:)")
_PLAIN_CATEGORY = re.compile(r"^(?P<label>[A-Z][\w /&(),'-]{0,40}?):(?=\s)")
_FAQ_START = re.compile(r"^(\*\*)?Q:")
_FAQ = re.compile(r"^\*\*Q:\s*(?P<q>[^*]+?)\s*\*\*\s*A:(?P<a>.*)$|^Q:\s*(?P<pq>[^*]+?\?)\s*A:(?P<pa>.*)$", re.S)

_BAND = re.compile(r"(?P<op>[<>≤≥])?\s*(?P<lo>\d+(?:\.\d+)?)(?:\s*[-–]\s*(?P<hi>\d+(?:\.\d+)?))?\s*%")


@dataclass
class _RawSection:
    title: str
    level: int
    line: int
    lines: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Chunk:
    """Lines of one paragraph or one bullet, joined with spaces; `starts` maps offsets to lines."""

    kind: str  # "para" or "bullet"
    line: int
    text: str = ""
    starts: list[tuple[int, int]] = field(default_factory=list)

    def add(self, lineno: int, piece: str) -> None:
        if self.text:
            self.text += " "
        self.starts.append((len(self.text), lineno))
        self.text += piece.strip()

    def line_at(self, offset: int) -> int:
        return max((ln for start, ln in self.starts if start <= offset), default=self.line)


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.text = text
        self.lines = text.removeprefix("\ufeff").splitlines()
        self.section_id: str | None = None
        self.count = 0  # running sentence number within the current section

    def fail(self, reason: str, line: int | None) -> None:
        raise MonographError(reason, source=self.source, line=line, section=self.section_id)

    def parse(self) -> Monograph:
        front, start = self._front_matter()
        title, title_line, raws = self._outline(start)
        if "title" in front and str(front["title"]).strip() != title:
            self.fail(f"title '{title}' differs from the front matter title '{front['title']}'", title_line)
        sections: list[Section] = []
        seen: dict[str, int] = {}
        for raw in raws:
            sections.append(self._section(raw, seen))
        return Monograph(title=title, front_matter=front, sections=tuple(sections),
                         source=self.source, text=self.text)

    def _front_matter(self) -> tuple[dict, int]:
        if not self.lines or self.lines[0].strip() != "---":
            return {}, 0
        end = next((i for i in range(1, len(self.lines)) if self.lines[i].strip() == "---"), None)
        if end is None:
            self.fail("front matter opened with '---' is never closed", 1)
        try:
            data = yaml.safe_load("\n".join(self.lines[1:end]))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            self.fail(f"front matter is not valid YAML ({getattr(exc, 'problem', None) or exc})",
                      2 + mark.line if mark else 1)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail("front matter must be a mapping of keys to values", 2)
        return data, end + 1

    def _outline(self, start: int) -> tuple[str, int, list[_RawSection]]:
        """Find the title and the sections, each with its own lines."""
        title: str | None = None
        title_line = 0
        raws: list[_RawSection] = []
        for index in range(start, len(self.lines)):
            lineno, line = index + 1, self.lines[index]
            heading = _HEADING.match(line)
            if heading:
                level = len(heading.group(1))
                text = (heading.group(2) or "").strip().rstrip("#").strip()
                if not text:
                    self.fail("empty heading", lineno)
                if level == 1:
                    if title is not None:
                        self.fail(f"second title '# {text}' (the title is on line {title_line})", lineno)
                    title, title_line = text, lineno
                elif title is None:
                    self.fail(f"section heading '{text}' before the title ('# Title' comes first)", lineno)
                else:
                    raws.append(_RawSection(text, level, lineno))
            elif raws:
                raws[-1].lines.append((lineno, line))
            elif line.strip():
                if title is None:
                    self.fail("text before the title: a monograph starts with a '# Title' heading", lineno)
                what = "bullet" if _BULLET.match(line) and not _RULE.match(line) else "text"
                self.fail(f"{what} outside any section (after the title, before the first '###' heading)",
                          lineno)
        if title is None:
            self.fail("no title: expected a '# Title' heading", min(start + 1, len(self.lines)) or 1)
        if not raws:
            self.fail("no sections: expected '### Section' headings after the title", title_line)
        return title, title_line, raws

    def _chunks(self, raw: _RawSection) -> list[_Chunk]:
        """Group a section's lines into paragraphs and bullets (a bullet keeps its continuation lines)."""
        chunks: list[_Chunk] = []
        current: _Chunk | None = None
        blank_before = False
        for lineno, line in raw.lines:
            if not line.strip():
                blank_before = True
                if current is not None and current.kind == "para":
                    current = None
                continue
            for pattern, what in _UNSUPPORTED:
                if pattern.match(line):
                    self.fail(f"{what} are not part of the monograph template", lineno)
            if _RULE.match(line):
                self.fail("horizontal rules are not part of the monograph template", lineno)
            bullet = _BULLET.match(line)
            body = line
            if bullet:
                if bullet.group(1):
                    self.fail("indented bullet: nested lists are not part of the template", lineno)
                body = bullet.group(2) or ""
                if not body.strip():
                    self.fail("empty bullet", lineno)
                current = _Chunk("bullet", lineno)
                chunks.append(current)
            elif current is None or (current.kind == "bullet" and blank_before and not line[0].isspace()):
                current = _Chunk("para", lineno)
                chunks.append(current)
            if body.count("**") % 2:
                self.fail("unbalanced '**' bold marker", lineno)
            if body.replace("**", "").count("*") % 2:
                self.fail("unbalanced '*' emphasis marker", lineno)
            current.add(lineno, body)
            blank_before = False
        return chunks

    def _section(self, raw: _RawSection, seen: dict[str, int]) -> Section:
        sid = slugify(raw.title)
        self.section_id, self.count = None, 0
        if not sid:
            self.fail(f"heading '{raw.title}' has no letters or digits to make an anchor from", raw.line)
        if sid in seen:
            self.fail(f"duplicate section id '{sid}' (first heading on line {seen[sid]})", raw.line)
        seen[sid] = raw.line
        self.section_id = sid
        chunks = self._chunks(raw)
        if not chunks:
            self.fail(f"section '{raw.title}' has no content", raw.line)
        blocks: list[Block] = []
        i = 0
        while i < len(chunks):
            chunk = chunks[i]
            heading: str | None = None
            if chunk.kind == "para":
                label = _LABEL.match(chunk.text)
                if not (label and not chunk.text[label.end():].strip()):
                    blocks.append(self._paragraph(chunk))
                    i += 1
                    continue
                heading = label.group("label").strip()
                if i + 1 >= len(chunks) or chunks[i + 1].kind != "bullet":
                    self.fail(f"bold heading '{heading}' has no bullet list under it", chunk.line)
                i += 1
            run: list[_Chunk] = []
            while i < len(chunks) and chunks[i].kind == "bullet":
                run.append(chunks[i])
                i += 1
            blocks.extend(self._list(run, heading))
        sentences = tuple(s for block in blocks for s in _block_sentences(block))
        return Section(id=sid, title=raw.title, level=raw.level, line=raw.line,
                       blocks=tuple(blocks), sentences=sentences)

    def _sentences(self, chunk: _Chunk, start: int, label: str | None) -> tuple[Sentence, ...]:
        """Split chunk.text[start:] into numbered sentences, each with the line it starts on."""
        out: list[Sentence] = []
        body = chunk.text[start:]
        for s, e in split_sentences(body):
            text = strip_emphasis(body[s:e])
            if text:
                self.count += 1
                out.append(Sentence(id=f"{self.section_id}.{self.count}", section_id=self.section_id,
                                    text=text, line=chunk.line_at(start + s), label=label))
        return tuple(out)

    def _paragraph(self, chunk: _Chunk) -> Paragraph:
        label = _LABEL.match(chunk.text)
        name = label.group("label").strip() if label else None
        start = label.end() if label else 0
        return Paragraph(label=name, text=strip_emphasis(chunk.text[start:]),
                         sentences=self._sentences(chunk, start, name), line=chunk.line)

    def _list(self, run: list[_Chunk], heading: str | None) -> list[Block]:
        faqs = [bool(_FAQ_START.match(c.text)) for c in run]
        if any(faqs):
            if not all(faqs):
                bad = run[faqs.index(False) if faqs[0] else faqs.index(True)]
                self.fail("a list mixes FAQ items ('**Q: ...?** A: ...') with plain bullets", bad.line)
            if heading is not None:
                self.fail(f"bold heading '{heading}' over FAQ items", run[0].line)
            return [self._faq(c) for c in run]
        band = _BAND.search(heading or "")
        low = high = None
        if band:
            low = high = float(band["lo"])
            if band["hi"]:
                high = float(band["hi"])
            elif band["op"] in ("<", "≤"):
                low = None
            elif band["op"] in (">", "≥"):
                high = None
        items = tuple(self._bullet(c, heading) for c in run)
        return [BulletList(heading=heading, band=band.group(0).strip() if band else None, items=items,
                           line=run[0].line, band_low=low, band_high=high)]

    def _bullet(self, chunk: _Chunk, heading: str | None) -> Bullet:
        match = _LABEL.match(chunk.text) or _PLAIN_CATEGORY.match(chunk.text)
        category = match.group("label").strip() if match else None
        start = match.end() if match else 0
        text = strip_emphasis(chunk.text[start:])
        if not text:
            self.fail(f"bullet '{category}' has no text after its category", chunk.line)
        sentences = self._sentences(chunk, start, category or heading)
        # A list line (no closing stop, one sentence) names terms; prose bullets do not.
        terms = split_terms(text) if len(sentences) == 1 and text[-1] not in ".!?" else ()
        return Bullet(category=category, text=text, terms=terms, sentences=sentences, line=chunk.line)

    def _faq(self, chunk: _Chunk) -> FAQ:
        match = _FAQ.match(chunk.text)
        # The bold form fills groups q/a, the plain "Q: ...? A: ..." form pq/pa.
        q, a = ("q", "a") if match and match.group("q") else ("pq", "pa")
        if not match or not strip_emphasis(match.group(a)):
            self.fail("FAQ item without an answer: expected '* **Q: question?** A: answer'", chunk.line)
        question, answer = strip_emphasis(match.group(q)), strip_emphasis(match.group(a))
        self.count += 1
        first = Sentence(id=f"{self.section_id}.{self.count}", section_id=self.section_id,
                         text=question, line=chunk.line, label=question)
        rest = self._sentences(chunk, match.start(a), question)
        return FAQ(question=question, answer=answer, line=chunk.line, sentences=(first,) + rest)


def _block_sentences(block: Block) -> tuple[Sentence, ...]:
    if isinstance(block, BulletList):
        return tuple(s for item in block.items for s in item.sentences)
    return block.sentences


def parse_monograph(text: str, source: str = "<monograph>") -> Monograph:
    """Parse monograph Markdown; raise MonographError naming the line it cannot read."""
    if not isinstance(text, str):
        raise MonographError(f"monograph text must be a string, not {type(text).__name__}", source=source)
    return _Parser(text, source).parse()


@lru_cache(maxsize=16)
def _parsed(text: str) -> Monograph | MonographError:
    try:
        return parse_monograph(text)
    except MonographError as error:
        return error


@lru_cache(maxsize=32)
def parse_monograph_once(text: str, source: str = "<monograph>") -> Monograph:
    """`parse_monograph(text, source)`, each text parsed once per process: the knowledge loader
    reads a module's monograph and the knowledge check reads it again from the DocumentReference
    the module became (twice at every start). The monograph is immutable; this one names `source`,
    and is the same object each time it is asked for (with the quotes it has looked up)."""
    parsed = _parsed(text)
    if isinstance(parsed, MonographError):
        return parse_monograph(text, source)  # raises it again, naming this source
    return parsed if parsed.source == source else dataclasses.replace(parsed, source=source)


def load_monograph(path: str | Path) -> Monograph:
    """Read and parse a monograph file (UTF-8)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MonographError(f"cannot read monograph file: {exc}", source=str(path)) from exc
    return parse_monograph(text, source=str(path))

