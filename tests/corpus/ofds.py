"""OFD files (GB/T 33190) the corpus tests write themselves: text objects at given places.

An OFD is a zip: ``OFD.xml`` (document info and where the document root is), the document
(``Doc_0/Document.xml``: pages, page area, public resources) and each page's ``Content.xml``
with ``TextObject`` elements (``Boundary`` "x y w h" in millimetres, a ``TextCode`` with its
position inside the boundary). Objects are written in the order given, which need not be the
reading order.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

NS = "http://www.ofdspec.org/2016"

#: A text object: ``(x, y, text, size)`` in millimetres, ``y`` the top of the line.
Text = tuple[float, float, str, float]


def _page(texts: Sequence[Text], first_id: int) -> str:
    objects = []
    for n, (x, y, text, size) in enumerate(texts):
        width = size * len(text)
        objects.append(
            f'<ofd:TextObject ID="{first_id + n}" Boundary="{x} {y} {width} {size * 1.2}" Font="2" Size="{size}">'
            f'<ofd:FillColor Value="0 0 0"/>'
            f'<ofd:TextCode X="0" Y="{size}" DeltaX="g {max(0, len(text) - 1)} {size}">{escape(text)}</ofd:TextCode>'
            f"</ofd:TextObject>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{NS}"><ofd:Content>'
        f'<ofd:Layer ID="{first_id - 1}">{"".join(objects)}</ofd:Layer></ofd:Content></ofd:Page>'
    )


def write_ofd(
    path: Path,
    pages: Sequence[Sequence[Text]],
    *,
    title: str = "",
    author: str = "",
    creation_date: str = "",
    extra_members: dict[str, bytes] | None = None,
) -> None:
    info = "".join(
        f"<ofd:{tag}>{escape(value)}</ofd:{tag}>"
        for tag, value in (("Title", title), ("Author", author), ("CreationDate", creation_date))
        if value
    )
    ofd_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{NS}" Version="1.0" DocType="OFD">'
        f"<ofd:DocBody><ofd:DocInfo><ofd:DocID>0c2a3f</ofd:DocID>{info}</ofd:DocInfo>"
        f"<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    page_refs = "".join(
        f'<ofd:Page ID="{100 + i}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages))
    )
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{NS}"><ofd:CommonData>'
        f"<ofd:MaxUnitID>9999</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox>"
        f"</ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData>"
        f"<ofd:Pages>{page_refs}</ofd:Pages></ofd:Document>"
    )
    res = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Res xmlns:ofd="{NS}" BaseLoc="Res">'
        f'<ofd:Fonts><ofd:Font ID="2" FontName="宋体" FamilyName="宋体"/></ofd:Fonts></ofd:Res>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("OFD.xml", ofd_xml)
        zf.writestr("Doc_0/Document.xml", document)
        zf.writestr("Doc_0/PublicRes.xml", res)
        for i, texts in enumerate(pages):
            zf.writestr(f"Doc_0/Pages/Page_{i}/Content.xml", _page(texts, 1000 * (i + 1)))
        for name, data in (extra_members or {}).items():
            zf.writestr(name, data)


def lines(texts: Sequence[str], *, x: float = 25, top: float = 40, size: float = 5.6) -> list[Text]:
    """Lines one under the other (a line starting with full-width spaces is indented)."""
    out: list[Text] = []
    for i, line in enumerate(texts):
        indent = len(line) - len(line.lstrip("\u3000"))
        out.append((x + indent * size, top + i * size * 1.6, line.lstrip("\u3000"), size))
    return out
