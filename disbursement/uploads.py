"""Uploaded files, kept encrypted in the database until their batch is validated.

An upload holds national ids and account numbers, so it is stored like any personal data:
in chunks of ``CHUNK`` bytes, each sealed with the data keys (AES-GCM, bound to the column),
never on a local disk. Any worker on any host can then validate it. :class:`UploadStream`
reads it back as a seekable binary file, one chunk in memory at a time (zip archives seek to
their directory at the end first), so validating a million-row file needs a few megabytes.
The chunks are deleted once the batch has been validated: the items and the error report
hold what is needed from then on.
"""

from __future__ import annotations

import base64
import io
from collections import OrderedDict
from typing import IO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from chopay.db import Database
from disbursement.models import UPLOAD_DATA, Upload, UploadChunk

CHUNK = 1024 * 1024
_CACHED = 2


def store(
    session: Session,
    keys: DataKeys,
    stream: IO[bytes],
    *,
    fmt: str,
    filename: str | None,
    created_by: int | None,
) -> Upload:
    """Copy ``stream`` into a new encrypted upload, chunk by chunk; return it (flushed)."""
    upload = Upload(format=fmt, filename=filename, size=0, chunks=0, created_by=created_by)
    session.add(upload)
    session.flush()
    size = seq = 0
    while True:
        data = stream.read(CHUNK)
        if not data:
            break
        session.execute(
            sa.insert(UploadChunk),
            [{"upload_id": upload.id, "seq": seq, "data": seal(keys, data)}],
        )
        size += len(data)
        seq += 1
    upload.size = size
    upload.chunks = seq
    session.flush()
    return upload


def seal(keys: DataKeys, data: bytes) -> str:
    """Encrypt one chunk of a file."""
    return keys.encrypt(base64.b64encode(data).decode(), UPLOAD_DATA.context)


def open_chunk(keys: DataKeys, token: str) -> bytes:
    """Decrypt one chunk of a file."""
    return base64.b64decode(keys.decrypt(token, UPLOAD_DATA.context))


def delete(session: Session, upload_id: int) -> None:
    """Delete an upload and its chunks."""
    session.execute(sa.delete(UploadChunk).where(UploadChunk.upload_id == upload_id))
    session.execute(sa.delete(Upload).where(Upload.id == upload_id))


class UploadStream(io.RawIOBase):
    """A read-only, seekable binary file over an upload's encrypted chunks."""

    def __init__(self, database: Database, keys: DataKeys, upload_id: int) -> None:
        super().__init__()
        self._database = database
        self._keys = keys
        self._id = upload_id
        with database.read_session() as s:
            found = s.get(Upload, upload_id)
            if found is None:
                raise FileNotFoundError(f"upload {upload_id} is gone")
            self._size = found.size
        self._pos = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._size:
            return 0
        seq, start = divmod(self._pos, CHUNK)
        chunk = self._chunk(seq)
        n = min(len(buffer), len(chunk) - start)
        buffer[:n] = chunk[start : start + n]
        self._pos += n
        return n

    def _chunk(self, seq: int) -> bytes:
        found = self._cache.get(seq)
        if found is not None:
            self._cache.move_to_end(seq)
            return found
        with self._database.read_session() as s:
            token = s.scalar(
                sa.select(UploadChunk.data).where(UploadChunk.upload_id == self._id, UploadChunk.seq == seq)
            )
        if token is None:
            raise OSError(f"chunk {seq} of upload {self._id} is missing")
        data = open_chunk(self._keys, token)
        self._cache[seq] = data
        if len(self._cache) > _CACHED:
            self._cache.popitem(last=False)
        return data


def open_upload(database: Database, keys: DataKeys, upload_id: int) -> io.BufferedReader:
    """Open an upload for reading as a buffered binary file."""
    return io.BufferedReader(UploadStream(database, keys, upload_id), buffer_size=256 * 1024)
