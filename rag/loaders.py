"""Turn files into documents. Anything unreadable is reported as skipped, never raised: one bad
file in a folder of thousands must not stop an index build."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

from advisor.errors import UserError

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | {".jsonl", ".jsonl.gz", ".pdf"}

# A NUL byte in the first 8 KiB is the heuristic git and grep use to call a file binary.
_BINARY_SNIFF = 8192


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str  # what is chunked; chunk offsets point into this string

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.title}\x00{self.text}".encode()).hexdigest()


@dataclass
class LoadedFile:
    path: str  # absolute
    sha256: str
    docs: list[Document]
    problems: list[str]  # per-line issues inside a jsonl file that did load


class SkipFile(Exception):
    """The file cannot be indexed; the message says why."""


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def discover(paths: list[str | os.PathLike], exclude: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Files under the given paths (sorted, hidden entries and the `exclude` folder - the index being
    written, when it lies inside the corpus - skipped) and the roots they came from.

    Deletion is scoped to these roots: a file indexed earlier from another root is kept."""
    files: list[Path] = []
    roots: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise UserError(f"{raw}: no such file or directory (expected a file or folder of documents)")
        p = p.resolve()
        roots.append(p)
        if not p.is_dir():  # a file, or a pipe or device that read_bytes reports as skipped
            files.append(p)
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                 and (exclude is None or Path(dirpath, d) != exclude))
            files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    seen: set[Path] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]
    return unique, roots


def doc_id_for(path: Path, roots: list[Path]) -> str:
    """Plain files are named by their path relative to the root they were found under, so ids
    stay stable when the folder moves (qrels can refer to them)."""
    for r in roots:
        if r.is_dir() and path.is_relative_to(r):
            return path.relative_to(r).as_posix()
    return path.name


def read_bytes(path: Path) -> bytes:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # reading a named pipe would wait for a writer forever
            raise SkipFile("not a regular file (a pipe, socket or device)")
        return path.read_bytes()
    except OSError as e:
        raise SkipFile(f"unreadable ({e.strerror or type(e).__name__})") from None


def _decode(data: bytes) -> str:
    if b"\x00" in data[:_BINARY_SNIFF]:
        raise SkipFile("binary content")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SkipFile(f"not UTF-8 (byte {e.start})") from None


class _HTMLText(HTMLParser):
    """Visible text of an HTML page; block elements become line breaks so words do not fuse."""

    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
              "footer", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "dd", "dt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip_depth += 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    return " ".join("".join(parser.title_parts).split()), text


def _jsonl_docs(lines: Iterator[str], name: str, problems: list[str]) -> list[Document]:
    """BEIR corpus rows: {"_id", "title", "text"}; the title leads the text, as BEIR's dense
    baselines encode title + text."""
    docs = []
    first_line: dict[str, int] = {}  # an id names one document: the index keys documents by (file, _id)
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"{name}:{lineno}: not valid JSON")
            continue
        if (not isinstance(row, dict) or not isinstance(row.get("_id"), (str, int)) or isinstance(row["_id"], bool)
                or not str(row["_id"]).strip() or not isinstance(row.get("text"), str)):
            # a null, empty or non-scalar _id would become a document id like 'None' that no qrels can name
            problems.append(f"{name}:{lineno}: expected an object with a string or integer '_id' and a 'text' string")
            continue
        doc_id = str(row["_id"])
        if doc_id in first_line:
            problems.append(f"{name}:{lineno}: duplicate _id {doc_id!r} (first on line {first_line[doc_id]}); "
                            "this row is skipped")
            continue
        first_line[doc_id] = lineno
        title = row.get("title") or ""
        title = title if isinstance(title, str) else str(title)
        text = f"{title}\n\n{row['text']}" if title else row["text"]
        if text.strip():
            docs.append(Document(doc_id=doc_id, title=title, text=text))
    return docs


def _pdf_text(data: bytes) -> str:
    try:
        import pypdf
    except ImportError:
        raise SkipFile("PDF needs pypdf (pip install pypdf)") from None
    import io

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except Exception as e:  # pypdf raises many types on damaged files
        raise SkipFile(f"unreadable PDF ({type(e).__name__})") from None


def load_file(path: Path, data: bytes, doc_id: str) -> tuple[list[Document], list[str]]:
    """Documents in one file and per-line problems; raises SkipFile when there is nothing to index."""
    suffix = suffix_of(path)
    if not data.strip():
        raise SkipFile("empty")
    problems: list[str] = []
    if suffix in TEXT_SUFFIXES:
        text = _decode(data)
        docs = [Document(doc_id=doc_id, title="", text=text)] if text.strip() else []
    elif suffix in HTML_SUFFIXES:
        title, text = html_to_text(_decode(data))
        body = f"{title}\n\n{text}" if title and text else (text or title)
        docs = [Document(doc_id=doc_id, title=title, text=body)] if body.strip() else []
    elif suffix == ".jsonl":
        docs = _jsonl_docs(iter(_decode(data).splitlines()), path.name, problems)
    elif suffix == ".jsonl.gz":
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise SkipFile(f"corrupt gzip ({e})") from None
        docs = _jsonl_docs(iter(_decode(raw).splitlines()), path.name, problems)
    elif suffix == ".pdf":
        text = _pdf_text(data)
        docs = [Document(doc_id=doc_id, title="", text=text)] if text.strip() else []
    else:
        raise SkipFile(f"unsupported type '{suffix or path.name}' (supported: {', '.join(sorted(SUPPORTED))})")
    if not docs:
        raise SkipFile("no text" + (f"; {problems[0]}" if problems else ""))
    return docs, problems


def load(path: Path, roots: list[Path]) -> LoadedFile:
    data = read_bytes(path)
    docs, problems = load_file(path, data, doc_id_for(path, roots))
    return LoadedFile(path=str(path), sha256=hashlib.sha256(data).hexdigest(), docs=docs, problems=problems)
