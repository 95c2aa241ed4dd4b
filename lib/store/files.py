"""Export files (§8): written as they are produced, never held whole in memory, and resumable from a
checkpoint when an export continues in a later invocation.

* Deployed (EXPORT_BUCKET): an S3 multipart upload per file, parts of 8 MiB. At a checkpoint the
  bytes not yet making a part (< 5 MiB is not a valid part) are saved as a small tail object and
  read back on resume. Every checkpoint writes a tail of its own (TAIL_PREFIX<file>.<run>.<n>), never
  over another: a resume from checkpoint n reads exactly n's bytes whatever later attempts wrote
  and lost. Tails are deleted once the export has finished and its job recorded it (`forget_tails`);
  what a dead function leaves there expires by the bucket's lifecycle rule on TAIL_PREFIX.
* Otherwise (the local run): a file in EXPORT_DIR, appended to; a checkpoint is its size, and a
  resume truncates to it (lines written after the last checkpoint are written again).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lib.settings import settings

PART_BYTES = 8 * 1024 * 1024
TAIL_PREFIX = "checkpoints/"  # template.yaml: the export bucket expires these after a day


def _s3() -> Any:
    from lib.store.table import service_client

    return service_client("s3")


class ExportFile:
    """One export file being written: `write` lines, `checkpoint` for a resume, `close` when done.
    Every operation is safe to repeat from the last checkpoint: a resumed file rewrites what came
    after it, and a close that was interrupted after it finished the file (its job's final save
    failed) finds the file finished and carries on."""

    def __init__(self, name: str, state: dict[str, Any] | None = None, run: str = ""):
        state = state or {}
        self.name, self.run = name, run
        self.bucket = settings().export_bucket
        self.buffer = bytearray()
        self.resumed = bool(state)
        self.finished = bool(state.get("finished"))  # closed: the file is there for anyone to read
        if self.bucket:
            self.s3 = _s3()
            # The multipart upload starts with the first full part: a small file is one plain put.
            self.upload_id: str | None = state.get("upload_id")
            self.parts: list[dict[str, Any]] = list(state.get("parts", []))
            self.tail: str | None = state.get("tail") or None  # the last checkpoint's tail, not read back yet
            self.checkpoints = int(state.get("n", 0))
        else:
            folder = Path(settings().export_dir)
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / name
            with self.path.open("ab") as handle:
                handle.truncate(state.get("size", 0))

    def _read_tail(self) -> None:
        """The bytes the last checkpoint saved as a tail object come first (read back when needed)."""
        if self.bucket and self.tail:
            self.buffer[:0] = self.s3.get_object(Bucket=self.bucket, Key=self.tail)["Body"].read()
            self.tail = None

    def write(self, text: str) -> None:
        self._read_tail()
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
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.name)["UploadId"]
        number = len(self.parts) + 1
        etag = self.s3.upload_part(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id, PartNumber=number,
                                   Body=bytes(self.buffer))["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})
        self.buffer.clear()

    def checkpoint(self) -> dict[str, Any]:
        """State from which a later invocation resumes this file exactly."""
        if self.finished:
            return {"finished": True}
        if not self.bucket:
            self._flush()
            return {"size": os.path.getsize(self.path)}
        tail = self.tail
        if self.buffer:
            tail = f"{TAIL_PREFIX}{self.name}.{self.run}.{self.checkpoints + 1}"
            self.s3.put_object(Bucket=self.bucket, Key=tail, Body=bytes(self.buffer))
            self.checkpoints += 1
        return {"upload_id": self.upload_id, "parts": self.parts, "tail": tail, "n": self.checkpoints}

    def close(self) -> None:
        """Finish the file (idempotent: a file an earlier close finished stays as it is)."""
        if self.finished:
            return
        if not self.bucket:
            self._flush()
            self.finished = True
            return
        if self.resumed and self.upload_id is not None and self._finished_before():
            self.finished = True
            return
        self._read_tail()
        if not self.parts:
            # Small enough for one request: a plain put (written again whole if a resume repeats it).
            self.s3.put_object(Bucket=self.bucket, Key=self.name, Body=bytes(self.buffer))
            if self.upload_id is not None:
                self._abort_upload()
        else:
            self._flush()
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id,
                                              MultipartUpload={"Parts": self.parts})
        self.finished = True  # its tails stay until the export's end is recorded (forget_tails)
        self.buffer.clear()

    def abandon(self) -> None:
        """An export that will not continue (it failed before anything was promised): leave nothing."""
        if not self.bucket:
            self.path.unlink(missing_ok=True)
            return
        if self.upload_id is not None:
            self._abort_upload()
        forget_tails([self.name], self.run)

    def _finished_before(self) -> bool:
        """The upload is gone (completed, or aborted after a plain put) and the file is there."""
        try:
            self.s3.list_parts(Bucket=self.bucket, Key=self.name, UploadId=str(self.upload_id), MaxParts=1)
            return False
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
        self.s3.head_object(Bucket=self.bucket, Key=self.name)  # raises if the file is not there either
        return True

    def _abort_upload(self) -> None:
        assert self.upload_id is not None
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise



def forget_tails(names: list[str], run: str) -> None:
    """Delete every checkpoint tail of these files written by the run `run` (once that export has
    ended: nothing resumes it). Tails carry their run: two exports of one millisecond have the same
    file names (§8), never the same tails."""
    bucket = settings().export_bucket
    if not bucket:
        return
    s3 = _s3()
    keys = []
    for name in names:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{TAIL_PREFIX}{name}.{run}.")
        keys += [item["Key"] for page in pages for item in page.get("Contents", [])]
    for at in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[at:at + 1000]], "Quiet": True})
