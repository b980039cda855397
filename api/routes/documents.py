"""``/documents``: list, show, add (files or JSON) and delete documents.

Writes need the API key. A write builds a new index generation and swaps it in when it is
complete; searches running meanwhile are answered from the previous one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from policyqa.api.deps import ServiceDep, SettingsDep, WriteAccess
from policyqa.api.errors import ApiError
from policyqa.api.routes import errors
from policyqa.api.schemas import (
    ChunkOut,
    DocumentDetail,
    DocumentList,
    DocumentsIn,
    DocumentSummary,
    FileStatusOut,
    WriteResponse,
)
from policyqa.corpus.loaders import MEDIA_TYPES
from policyqa.corpus.uploads import UNSUPPORTED_TYPE, UPLOAD_EXTENSIONS, NewDocument, UploadedFile
from policyqa.service import NothingIndexedError, WriteResult

__all__ = ["router", "write_response"]

router = APIRouter(prefix="/documents", tags=["documents"])

DocId = Annotated[str, Path(max_length=512, description="Document id.")]

_MULTIPART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "minItems": 1,
            "description": f"The files ({' '.join(UPLOAD_EXTENSIONS)}, or a file "
            "of another name labelled with one of the media types below); each gets a status. The "
            "server's max_upload_files setting caps their number (20 by default). When every file "
            "is of another type the answer is 415; a file whose content does not match its type "
            "is rejected with its reason (422 when none could be indexed).",
        }
    },
    "required": ["files"],
}
_MULTIPART_ENCODING: dict[str, Any] = {"files": {"contentType": ", ".join(MEDIA_TYPES)}}


def write_response(result: WriteResult) -> WriteResponse:
    """The response model of a service write."""
    return WriteResponse(
        files=[FileStatusOut.of(f) for f in result.files],
        added=result.added,
        replaced=result.replaced,
        removed=result.removed,
        documents=result.documents,
        chunks=result.chunks,
        index_version=result.index_version,
        took_ms=round(result.took_ms, 3),
    )


@router.get("", response_model=DocumentList, summary="List documents", responses=errors(422, 500, 503))
def list_documents(
    service: ServiceDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Documents to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size (1–500).")] = 50,
) -> DocumentList:
    """One page of the indexed documents with their metadata, in index order."""
    total, rows = service.list_documents(offset=offset, limit=limit)
    return DocumentList(
        total=total,
        offset=offset,
        limit=limit,
        documents=[
            DocumentSummary(
                id=r["doc_id"],
                title=r["title"],
                issuer=r["issuer"],
                doc_number=r["doc_number"],
                date=r["date"],
                doc_type=r["doc_type"],
                region=r["region"],
                source=r["source"],
                chunks=r["n_chunks"],
                chars=r["n_chars"],
            )
            for r in rows
        ],
    )


@router.get(
    "/{doc_id:path}",
    response_model=DocumentDetail,
    summary="Show a document",
    responses=errors(404, 422, 500, 503),
)
def get_document(doc_id: DocId, service: ServiceDep) -> DocumentDetail:
    """A document's metadata, full text and chunks (with their offsets and headings)."""
    view = service.get_document(doc_id)
    d, m = view.document, view.document.meta
    return DocumentDetail(
        id=d.id,
        title=d.title,
        issuer=m.issuer,
        doc_number=m.doc_number,
        date=m.date,
        doc_type=m.doc_type,
        region=m.region,
        source=m.source,
        extra=m.extra,
        text=d.text,
        chunks=[
            ChunkOut(id=c.id, ordinal=c.ordinal, start=c.start, end=c.end, heading=c.heading, text=c.text)
            for c in view.chunks
        ],
    )


@router.post(
    "",
    response_model=WriteResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Add documents (files or JSON)",
    responses=errors(400, 401, 403, 409, 413, 415, 422, 500, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "Files as multipart/form-data (field 'files', repeated), or documents as JSON.",
            "content": {
                "multipart/form-data": {"schema": _MULTIPART_SCHEMA, "encoding": _MULTIPART_ENCODING},
                "application/json": {"schema": {"$ref": "#/components/schemas/DocumentsIn"}},
            },
        }
    },
)
async def add_documents(
    request: Request, service: ServiceDep, settings: SettingsDep, _key: WriteAccess
) -> WriteResponse:
    """Index uploaded files or JSON documents incrementally (a document whose id exists is
    replaced). Each file gets a status: ``indexed`` (with the documents it gave) or ``rejected``
    (with the reason: unsupported type, content that does not match its extension, no text…).
    When nothing at all can be indexed the answer is 422 with the per-file status. Client file
    names are sanitised and never used as paths. Needs the API key."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        payload = _parse_json(await request.body())
        documents = [
            NewDocument(
                text=d.text,
                title=d.title,
                id=d.id,
                issuer=d.issuer,
                doc_number=d.doc_number,
                date=d.date.isoformat() if d.date else None,
                doc_type=d.doc_type,
                region=d.region,
                source=d.source,
            )
            for d in payload.documents
        ]
        result = await run_in_threadpool(service.add_documents, documents)
    elif ctype == "multipart/form-data":
        uploads = await _read_files(request, settings.max_upload_files)
        try:
            result = await run_in_threadpool(service.add_files, uploads)
        except NothingIndexedError as exc:
            if exc.files and all((f.reason or "").startswith(UNSUPPORTED_TYPE) for f in exc.files):
                raise ApiError(
                    415,
                    str(exc),
                    extra={"files": [FileStatusOut.of(f) for f in exc.files]},
                ) from None
            raise
    else:
        raise ApiError(
            415,
            f"unsupported Content-Type {ctype or '(none)'!r}: send files as multipart/form-data "
            "(field 'files') or documents as application/json",
        )
    return write_response(result)


def _parse_json(body: bytes) -> DocumentsIn:
    try:
        return DocumentsIn.model_validate_json(body)
    except ValidationError as exc:
        errs = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        raise RequestValidationError(errs) from None


async def _read_files(request: Request, max_files: int) -> list[UploadedFile]:
    try:
        form = await request.form(max_files=max_files, max_fields=10)
    except MultiPartException as exc:
        raise ApiError(422, f"cannot read the upload: {exc.message}") from None
    except HTTPException as exc:  # starlette reports some (too many files …) as a 400
        raise ApiError(422, f"cannot read the upload: {exc.detail}") from None
    try:
        unknown = sorted({k for k in form if k != "files"})
        if unknown:
            raise ApiError(
                422, f"unknown form field(s) {', '.join(unknown)}: send the files as field 'files'"
            )
        items = form.getlist("files")
        if not items:
            raise ApiError(422, "no files: send one or more files in the multipart field 'files'")
        uploads: list[UploadedFile] = []
        for item in items:
            if not isinstance(item, UploadFile):
                raise ApiError(422, "the field 'files' must hold files (with a filename), not text values")
            uploads.append(
                UploadedFile(
                    name=item.filename or "upload", data=await item.read(), media_type=item.content_type
                )
            )
        return uploads
    finally:
        await form.close()


@router.delete(
    "/{doc_id:path}",
    response_model=WriteResponse,
    summary="Delete a document",
    responses=errors(401, 403, 404, 409, 422, 500, 503),
)
def delete_document(doc_id: DocId, service: ServiceDep, _key: WriteAccess) -> WriteResponse:
    """Remove a document and its chunks from the index. Needs the API key."""
    return write_response(service.delete_document(doc_id))
