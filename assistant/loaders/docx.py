"""Word files: paragraphs, headings and tables in document order with python-docx.

A .docx is a zip: it is checked before python-docx opens it, so a file that is not a zip, or a
zip bomb (a small file that inflates to gigabytes), is refused with one line instead of
exhausting memory.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.ingest import Document, IngestError
from assistant.loaders.text import analyse
from assistant.model_files import sha256_file

MAX_UNZIPPED_BYTES = 500_000_000
MAX_RATIO = 200  # real Word files compress text ~10x; hundreds-fold is a bomb


def _check_zip(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        raise IngestError(f"{path.name}: not a Word document (a .docx is a zip file; this is not one)")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        unzipped = sum(i.file_size for i in infos)
        packed = max(1, sum(i.compress_size for i in infos))
        if "word/document.xml" not in {i.filename for i in infos}:
            raise IngestError(f"{path.name}: not a Word document (no word/document.xml inside)")
    if unzipped > MAX_UNZIPPED_BYTES or unzipped / packed > MAX_RATIO:
        raise IngestError(f"{path.name}: refused: it would unpack to {unzipped / 1e6:.0f} MB "
                          f"({unzipped / packed:.0f}x its size), which looks like a zip bomb")


def _blocks(document: Any) -> Iterator[str]:
    """Body paragraphs and table rows in the order they appear (python-docx lists them apart)."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = " ".join(item.text.split())
            if text:
                yield text
        elif isinstance(item, Table):
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    value = " ".join(cell.text.split())
                    if value and (not cells or cells[-1] != value):  # merged cells repeat their text
                        cells.append(value)
                if cells:
                    yield " | ".join(cells)


def load_docx(path: Path) -> Document:
    import docx

    _check_zip(path)
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises KeyError/ValueError/lxml errors on broken packages
        raise IngestError(f"{path.name}: not a readable Word document ({type(exc).__name__})") from None
    text = "\n".join(_blocks(document))
    if not text.strip():
        raise IngestError(f"{path.name}: no text in this Word document")
    doc = analyse(path.name, path, text + "\n")
    props = document.core_properties
    doc.kind = "docx"
    doc.sha256 = sha256_file(path)
    doc.title = (props.title or "").strip() or doc.title
    doc.author = (props.author or "").strip() or doc.author
    doc.date = props.created.date().isoformat() if props.created else doc.date
    return doc
