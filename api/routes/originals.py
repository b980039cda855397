"""``GET /originals/{doc_id}``: the file a document was read from, to open a citation at its page.

The file is the copy kept when it was indexed (:class:`policyqa.corpus.originals.OriginalStore`),
found by the document's recorded key, never by a path a client gives. A PDF or an image is shown
in the browser (a PDF opens at a page with ``#page=N``, as the chat page links it); any other
type is sent as a download. The response is sandboxed (``Content-Security-Policy: sandbox``, no
type sniffing), so a kept file runs no script in this site's origin. Readable by whoever may read
``/documents/{id}``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from policyqa.api.deps import ServiceDep
from policyqa.api.routes import errors
from policyqa.corpus.originals import original_media_type

__all__ = ["router"]

router = APIRouter(prefix="/originals", tags=["documents"])

DocId = Annotated[str, Path(max_length=512, description="Document id.")]


@router.get(
    "/{doc_id:path}",
    summary="Open a document's original file",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/pdf": {}, "image/*": {}, "application/octet-stream": {}}},
        **errors(404, 422, 500, 503),
    },
)
def get_original(doc_id: DocId, service: ServiceDep) -> FileResponse:
    """The original file of a document (404 when none was kept, e.g. a document given as JSON)."""
    path, key, name = service.original(doc_id)
    media, inline = original_media_type(key)
    disposition = "inline" if inline else "attachment"
    return FileResponse(
        path,
        media_type=media,
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "Content-Security-Policy": "sandbox",
            "X-Content-Type-Options": "nosniff",
        },
    )
