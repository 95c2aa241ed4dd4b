"""Export files (§8): written as they are produced, never held whole in memory, and resumable from a
checkpoint when an export continues in a later invocation.

* Deployed (EXPORT_BUCKET): an S3 multipart upload per file, parts of 8 MiB. At a checkpoint the
  bytes not yet making a part (< 5 MiB is not a valid part) are saved as a small `.tail` object and
  read back on resume.
* Otherwise (the local run): a file in EXPORT_DIR, appended to; a checkpoint is its size, and a
  resume truncates to it (lines written after the last checkpoint are written again).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lib.settings import settings

PART_BYTES = 8 * 1024 * 1024


def _s3() -> Any:
    import boto3

    from lib.store.table import CLIENT_CONFIG

    return boto3.client("s3", config=CLIENT_CONFIG)


class ExportFile:
    """One export file being written: `write` lines, `checkpoint` for a resume, `close` when done."""

    def __init__(self, name: str, state: dict[str, Any] | None = None):
        self.name = name
        self.bucket = settings().export_bucket
        self.buffer = bytearray()
        if self.bucket:
            self.s3 = _s3()
            self.upload_id = (state or {}).get("upload_id")
            self.parts: list[dict[str, Any]] = list((state or {}).get("parts", []))
            if self.upload_id is None:
                self.upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]
            if (state or {}).get("tail"):
                self.buffer += self.s3.get_object(Bucket=self.bucket, Key=self._tail_key)["Body"].read()
        else:
            folder = Path(settings().export_dir)
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / name
            with self.path.open("ab") as handle:
                handle.truncate((state or {}).get("size", 0))

    @property
    def _tail_key(self) -> str:
        return f"{self.name}.tail"

    def write(self, text: str) -> None:
        self.buffer += text.encode("utf-8")
        if len(self.buffer) >= PART_BYTES:
            self._flush()

    def _flush(self) -> None:
        """Local: append the buffer. S3: upload it as the next part (≥ 5 MiB unless it is the last)."""
        if not self.buffer:
            return
        if not self.bucket:
            with self.path.open("ab") as handle:
                handle.write(self.buffer)
            self.buffer.clear()
            return
        number = len(self.parts) + 1
        etag = self.s3.upload_part(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id, PartNumber=number,
                                   Body=bytes(self.buffer))["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})
        self.buffer.clear()

    def checkpoint(self) -> dict[str, Any]:
        """State from which a later invocation resumes this file exactly."""
        if not self.bucket:
            self._flush()
            return {"size": os.path.getsize(self.path)}
        tail = bool(self.buffer)
        if tail:
            self.s3.put_object(Bucket=self.bucket, Key=self._tail_key, Body=bytes(self.buffer))
        return {"upload_id": self.upload_id, "parts": self.parts, "tail": tail}

    def close(self) -> None:
        if not self.bucket:
            self._flush()
            return
        if not self.parts:
            # Small enough for one request: a plain put, and no multipart upload left behind.
            self.s3.put_object(Bucket=self.bucket, Key=self.name, Body=bytes(self.buffer))
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id)
        else:
            self._flush()
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id,
                                              MultipartUpload={"Parts": self.parts})
        self.s3.delete_object(Bucket=self.bucket, Key=self._tail_key)
        self.buffer.clear()
