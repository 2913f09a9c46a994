"""Safe reading of exports delivered as a folder or a zip: confinement, size limits, JSON depth, and the
raw quarantine of records that do not parse.

An export comes from outside (a vendor's tool, an administrator, an attacker) and is read as hostile:
  - confinement: every path read is relative to the export root, has no `..` component, is not absolute
    (`/x`, `\\x`, `C:x`), and no symbolic link is followed anywhere below the root (a folder is walked one
    component at a time with `O_NOFOLLOW`, so a link swapped in during the read is refused too). The
    root itself may be a link (it is the operator's own configuration). A zip with a member whose name
    escapes, a symlink member, two members of the same name or overlapping members is refused as a
    whole when it is opened. Only regular files are read (a FIFO or a device is refused).
    Violations raise `UnsafePath` naming the offending path: a path escape is an attack, not a typo.
  - sizes: `max_member_bytes` bounds one file / zip member (the declared size of a zip member is checked
    before reading, the bytes actually read while reading, and the CRC at the end, so a member whose
    size header lies is stopped as well); `max_total_bytes` bounds everything one import reads;
    `max_compression_ratio` stops zip members (of at least `RATIO_MIN_BYTES`) that inflate more than
    that. Files are read one at a time; violations raise `TooLarge` naming the file, its size and the
    option to raise.
  - JSON: `loads_json` and `iter_json_array` (an array document parsed one element at a time, so a
    big day file is held once as text, never as a whole tree of dicts) refuse documents nested deeper
    than `max_json_depth` (64) with a clean `BadJson` reason, never a RecursionError: the C parser's
    RecursionError on a 100k-deep `[[[[...` is caught, and what parses is measured iteratively, so no
    later code recurses more than 64 levels.
  - quarantine: `Quarantine` collects the records that do not parse (file, index, reason: never a
    value of the record) and writes one small JSON file per import run under
    `<lake>/quarantine/raw/source=<name>/`, or raises instead when the import runs with
    `bad_records: reject`.

Reuse (e.g. by the file-drop import): `open_tree(path, limits)` gives the same read-only interface for
a folder and a zip (`read`, `open` for streaming, `listdir`, `where`); `FolderTree(dir).open(name)`
alone confines and bounds one file; `Budget` spans several trees of one import; `ExportLimits` is a
pydantic base class that adds the options with their defaults to a source's options model;
`ArchiveError.where` / `.reason` map onto a `Problem(file, None, reason)`. POSIX only (`O_NOFOLLOW`,
`dir_fd`).
"""

from __future__ import annotations

import datetime as dt
import errno
import io
import json
import logging
import os
import re
import stat
import uuid
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB
DEFAULT_MAX_MEMBER_BYTES = 256 * MiB
DEFAULT_MAX_TOTAL_BYTES = 20 * GiB
DEFAULT_MAX_COMPRESSION_RATIO = 200.0
DEFAULT_MAX_JSON_DEPTH = 64
#: zip members smaller than this are not ratio-checked (a small file of spaces honestly compresses 500:1)
RATIO_MIN_BYTES = 1 * MiB
#: records listed in one quarantine file; the counts always cover all of them
MAX_QUARANTINE_RECORDS = 10_000
_CHUNK = 1 * MiB

BadRecords = Literal["quarantine", "reject"]


class ArchiveError(ValueError):
    """An export cannot be read safely: `where` names the file (or zip member), `reason` says why and
    what to do; the message is both."""

    def __init__(self, where: str, reason: str):
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}")


class UnsafePath(ArchiveError):
    """A path leaves the export (`..`, absolute name, symbolic link) or is not a regular file."""


class TooLarge(ArchiveError):
    """A file, a zip member or the whole import is larger than a limit (the message names the option)."""


class CorruptArchive(ArchiveError):
    """A zip (or one of its members) is damaged or built to mislead: bad CRC, lying size, overlap."""


class ExportLimits(BaseModel):
    """Options shared by the export sources (a base class of their options models)."""

    model_config = ConfigDict(extra="forbid")
    max_member_bytes: int = Field(DEFAULT_MAX_MEMBER_BYTES, gt=0,
                                  description="largest file / zip member read (uncompressed bytes)")
    max_total_bytes: int = Field(DEFAULT_MAX_TOTAL_BYTES, gt=0,
                                 description="most bytes one import reads, all files together")
    max_compression_ratio: float = Field(DEFAULT_MAX_COMPRESSION_RATIO, gt=1,
                                         description="largest uncompressed/compressed ratio of a zip member")
    bad_records: BadRecords = Field("quarantine", description="a record that does not parse is quarantined "
                                    "(counted, the rest imported) or rejects the whole import")


@dataclass(frozen=True)
class Limits:
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_compression_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH

    @classmethod
    def of(cls, opts: Any) -> Limits:
        """The limits set in an options model (missing fields keep their defaults)."""
        return cls(**{f: getattr(opts, f) for f in cls.__dataclass_fields__ if hasattr(opts, f)})


def _bytes(n: int) -> str:
    """`1234567 bytes (1.2 MiB)`; small sizes only in bytes."""
    return f"{n} bytes" + (f" ({human(n)})" if n >= 1024 else "")


def human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class Budget:
    """Bytes read by one import, across all its files and archives (`max_total_bytes`)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.total = 0

    def take(self, n: int, where: str) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            raise TooLarge(where, f"this import has read {human(self.total)}, more than max_total_bytes="
                           f"{_bytes(self.limits.max_total_bytes)}; raise the "
                           "option max_total_bytes if the export is genuine")


# ------------------------------------------------------------------------------------------ path rules
_DRIVE = re.compile(r"^[A-Za-z]:")


def name_problem(name: str) -> str | None:
    """Why a relative path (a zip member name, a folder-relative path) is unsafe, or None."""
    if "\x00" in name:
        return "contains a NUL character"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "is an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "has a '..' component"
    return None


def component_problem(name: str) -> str | None:
    """Why `name` cannot be one folder or file name inside an export (e.g. a channel's folder), or None."""
    if not name:
        return "is empty"
    if name in (".", ".."):
        return f"is {name!r}"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    return name_problem(name)


def _parts(rel: str, where: str) -> list[str]:
    problem = name_problem(rel)
    if problem:
        raise UnsafePath(where, f"the path {rel!r} {problem}; it would leave the export (refused)")
    return [p for p in PurePosixPath(rel).parts if p not in ("", ".")]


# ------------------------------------------------------------------------------------------ reading
class _Limited(io.RawIOBase):
    """A reader that stops at `max_member_bytes`, counts into the budget and checks size / ratio / CRC."""

    def __init__(self, raw: IO[bytes], where: str, limits: Limits, budget: Budget, *,
                 declared: int | None = None, compressed: int | None = None, crc: int | None = None):
        self._raw, self._where, self._limits, self._budget = raw, where, limits, budget
        self._declared, self._compressed, self._crc = declared, compressed, crc
        self._n = 0
        self._running = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self._raw.read(min(len(b), _CHUNK))
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise CorruptArchive(self._where, f"damaged zip member ({exc})") from None
        n = len(data)
        if n == 0:
            self._finish()
            return 0
        b[:n] = data
        self._n += n
        self._budget.take(n, self._where)
        if self._crc is not None:
            self._running = zlib.crc32(data, self._running)
        self._check()
        return n

    def _check(self) -> None:
        lim = self._limits
        if self._n > lim.max_member_bytes:
            lie = f" although it declares {self._declared} bytes" if self._declared is not None else ""
            raise TooLarge(self._where, f"more than max_member_bytes={_bytes(lim.max_member_bytes)} "
                           f"read{lie}; raise the option max_member_bytes if "
                           "the file is genuine")
        if self._declared is not None and self._n > self._declared:
            raise CorruptArchive(self._where, f"inflates past its declared size of {self._declared} bytes "
                                 "(a lying size header: refused)")
        if self._compressed is not None and self._n >= RATIO_MIN_BYTES and \
                self._n > lim.max_compression_ratio * max(self._compressed, 1):
            raise TooLarge(self._where, f"{human(self._n)} inflated from {human(self._compressed)}, a "
                           f"compression ratio above max_compression_ratio={lim.max_compression_ratio:g} (a zip "
                           "bomb?); raise the option max_compression_ratio if the export is genuine")

    def _finish(self) -> None:
        if self._declared is not None and self._n != self._declared:
            raise CorruptArchive(self._where, f"{self._n} bytes read, its header declares {self._declared} "
                                 "(a lying size header or a damaged zip: refused)")
        if self._crc is not None and (self._running & 0xFFFFFFFF) != self._crc:
            raise CorruptArchive(self._where, "content does not match its CRC-32 (a lying size header or "
                                 "a damaged zip: refused)")

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _read_all(reader: BinaryIO) -> bytearray:
    out = bytearray()
    with reader:
        while chunk := reader.read(_CHUNK):
            out += chunk
    return out


class Tree:
    """Read-only, confined view of an export (a folder or a zip). Paths use "/" and are relative."""

    label: str

    def read(self, rel: str) -> bytearray | None:
        """The bytes of a file (within the limits), or None when it does not exist."""
        f = self.open(rel)
        return None if f is None else _read_all(f)

    def open(self, rel: str) -> BinaryIO | None:  # pragma: no cover - interface
        raise NotImplementedError

    def listdir(self, rel: str) -> list[str] | None:  # pragma: no cover - interface
        """Sorted names of the non-directory entries directly in folder `rel` ("" = the root), or None
        when the folder does not exist."""
        raise NotImplementedError

    def where(self, rel: str) -> str:
        return f"{self.label}/{rel}" if rel else self.label

    def close(self) -> None:
        pass

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class FolderTree(Tree):
    def __init__(self, root: Path, limits: Limits, budget: Budget | None = None):
        self.label = str(root)
        self._real = root.resolve(strict=True)
        self.limits = limits
        self.budget = budget or Budget(limits)

    def _fd(self, rel: str, *, directory: bool) -> int | None:
        """A descriptor of `rel` opened component by component without following links, or None."""
        parts = _parts(rel, self.label)
        fd = os.open(self._real, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        try:
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                flags = os.O_RDONLY | _NOFOLLOW | _CLOEXEC
                flags |= _DIRECTORY if (directory or not last) else _NONBLOCK  # a FIFO must not block
                try:
                    nfd = os.open(part, flags, dir_fd=fd)
                except FileNotFoundError:
                    return None
                except OSError as exc:
                    shown = "/".join(parts[: i + 1])
                    try:
                        mode = os.lstat(part, dir_fd=fd).st_mode
                    except OSError:
                        raise exc from None
                    if stat.S_ISLNK(mode):
                        raise UnsafePath(self.where(shown), "a symbolic link: links are refused in an "
                                         "export (one could point outside it); replace it by the file "
                                         "itself") from None
                    if exc.errno == errno.ENOTDIR:
                        return None  # a file where a folder is expected: no such folder
                    raise
                os.close(fd)
                fd = nfd
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode)):
                if stat.S_ISDIR(mode):
                    os.close(fd)
                    return None
                raise UnsafePath(self.where(rel), "not a regular file (refused)")
            return fd
        except BaseException:
            os.close(fd)
            raise

    def open(self, rel: str) -> BinaryIO | None:
        fd = self._fd(rel, directory=False)
        if fd is None:
            return None
        size = os.fstat(fd).st_size
        where = self.where(rel)
        if size > self.limits.max_member_bytes:
            os.close(fd)
            raise TooLarge(where, f"{_bytes(size)}, more than max_member_bytes="
                           f"{_bytes(self.limits.max_member_bytes)}; raise the "
                           "option max_member_bytes if the file is genuine")
        raw = os.fdopen(fd, "rb", buffering=0)
        return io.BufferedReader(_Limited(raw, where, self.limits, self.budget))

    def open_raw(self, rel: str) -> BinaryIO | None:
        """A seekable file object of a regular file (e.g. a zip inside the folder), no size limit."""
        fd = self._fd(rel, directory=False)
        return None if fd is None else os.fdopen(fd, "rb")

    def listdir(self, rel: str) -> list[str] | None:
        fd = self._fd(rel, directory=True) if rel else os.open(self._real, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        if fd is None:
            return None
        try:
            names = []
            for name in os.listdir(fd):
                if not stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):
                    names.append(name)
            return sorted(names)
        finally:
            os.close(fd)


class ZipTree(Tree):
    def __init__(self, source: Path | IO[bytes], limits: Limits, budget: Budget | None = None, *,
                 label: str | None = None):
        self.label = label or str(source)
        self.limits = limits
        self.budget = budget or Budget(limits)
        self._zip = zipfile.ZipFile(source)
        try:
            self._members = self._check(self._zip.infolist())
        except BaseException:
            self._zip.close()
            raise

    def _check(self, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            problem = name_problem(name)
            if problem:
                raise UnsafePath(self.label, f"member {name!r} {problem}; it would leave the export (the "
                                 "zip is refused)")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnsafePath(self.label, f"member {name!r} is a symbolic link: links are refused in an "
                                 "export (the zip is refused)")
            if name in members:
                raise CorruptArchive(self.label, f"member {name!r} appears twice (the zip is refused)")
            members[name] = info
        end, prev = 0, ""
        for info in sorted(infos, key=lambda i: i.header_offset):
            if info.header_offset < end:
                raise CorruptArchive(self.label, f"members {prev!r} and {info.filename!r} overlap (a zip "
                                     "bomb construction: the zip is refused)")
            end, prev = info.header_offset + 30 + info.compress_size, info.filename
        return members

    def names(self) -> list[str]:
        return list(self._members)

    def where(self, rel: str) -> str:
        return f"{self.label}!{rel}"

    def open(self, rel: str) -> BinaryIO | None:
        info = self._members.get(rel)
        if info is None or info.is_dir():
            return None
        where, lim = self.where(rel), self.limits
        if info.file_size > lim.max_member_bytes:
            raise TooLarge(where, f"declares {_bytes(info.file_size)} uncompressed, "
                           f"more than max_member_bytes={_bytes(lim.max_member_bytes)}; "
                           "raise the option max_member_bytes if the file is genuine")
        if info.file_size >= RATIO_MIN_BYTES and \
                info.file_size > lim.max_compression_ratio * max(info.compress_size, 1):
            raise TooLarge(where, f"declares {human(info.file_size)} from {human(info.compress_size)}, a "
                           f"compression ratio above max_compression_ratio={lim.max_compression_ratio:g} (a zip "
                           "bomb?); raise the option max_compression_ratio if the export is genuine")
        try:
            raw = self._zip.open(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            raise CorruptArchive(where, f"cannot be read ({exc})") from None
        return io.BufferedReader(_Limited(raw, where, lim, self.budget, declared=info.file_size,
                                          compressed=info.compress_size, crc=info.CRC))

    def listdir(self, rel: str) -> list[str] | None:
        prefix = f"{rel.rstrip('/')}/" if rel else ""
        found = False
        out = []
        for name, info in self._members.items():
            if name.startswith(prefix):
                found = True
                rest = name[len(prefix):]
                if rest and "/" not in rest and not info.is_dir():
                    out.append(rest)
        return sorted(out) if found or not rel else None

    def close(self) -> None:
        self._zip.close()


def is_zip(path: Path) -> bool:
    return path.is_file() and zipfile.is_zipfile(path)


def open_tree(path: Path, limits: Limits, budget: Budget | None = None) -> Tree:
    """The export at `path`: a zip file or a folder."""
    if is_zip(path):
        return ZipTree(path, limits, budget)
    return FolderTree(path, limits, budget)


# ------------------------------------------------------------------------------------------ JSON
def json_depth_ok(value: Any, limit: int) -> bool:
    """True when a parsed value nests arrays/objects no deeper than `limit` (iterative, no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return False
        for v in (node.values() if type(node) is dict else node):
            if type(v) is dict or type(v) is list:
                push((v, depth + 1))
    return True


class BadJson(ValueError):
    """A document that is not JSON text within the limits; `reason` is a fixed phrase (no values)."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}{f' ({detail})' if detail else ''}")


def _deep(max_depth: int) -> BadJson:
    return BadJson(f"nested deeper than max_json_depth={max_depth}")


def _brackets(text: str | bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    if isinstance(text, str):
        return text.count("[", start, end) + text.count("{", start, end)
    return text.count(b"[", start, end) + text.count(b"{", start, end)


def loads_json(raw: str | bytes | bytearray, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """`json.loads` that raises `BadJson` for invalid text, non-UTF-8 bytes or a document nested deeper
    than `max_depth`. Very deep text makes the C parser raise RecursionError (it checks the interpreter's
    recursion limit, it does not overflow): caught here; anything it parses is then measured without
    recursion, so no caller ever walks more than `max_depth` levels."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadJson("not valid JSON", f"{exc.msg} at {exc.pos}") from None
    except UnicodeDecodeError:
        raise BadJson("not UTF-8 text") from None
    except RecursionError:
        raise _deep(max_depth) from None
    except ValueError:  # e.g. an integer of more than 4300 digits
        raise BadJson("not valid JSON", "a value out of range") from None
    if isinstance(value, dict | list) and _brackets(raw) > max_depth and not json_depth_ok(value, max_depth):
        raise _deep(max_depth)
    return value


NOT_AN_ARRAY = "not a JSON array"
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def iter_json_array(raw: bytes | bytearray, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Iterator[tuple[int, Any]]:
    """(index, element) of a JSON array document, parsed one element at a time: the file is held once as
    text, never as a whole tree of objects (a 200 MB day file is ~200 MB of text plus one message, not
    gigabytes of dicts). Same acceptance and `BadJson` reasons as `loads_json` (`NOT_AN_ARRAY` for valid
    JSON that is no array), but raised *mid-way*: a caller keeps what it made of the first elements
    aside until the iteration ends. Pass the only reference to `raw`: it is released once decoded."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads decodes bytes
    except UnicodeDecodeError:
        raise BadJson("not UTF-8 text") from None
    del raw

    def ws(pos: int) -> int:
        m = _WS.match(text, pos)
        return m.end() if m else pos

    pos = ws(0)
    if text[pos:pos + 1] != "[":
        loads_json(text, max_depth)  # the reason it is not JSON, if it is not
        raise BadJson(NOT_AN_ARRAY)
    pos = ws(pos + 1)
    index = 0
    if text[pos:pos + 1] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise BadJson("not valid JSON", f"{exc.msg} at {exc.pos}") from None
            except RecursionError:
                raise _deep(max_depth) from None
            except ValueError:
                raise BadJson("not valid JSON", "a value out of range") from None
            if _brackets(text, pos, end) >= max_depth and not json_depth_ok(value, max_depth - 1):
                raise _deep(max_depth)  # the array is one level
            yield index, value
            del value
            index += 1
            pos = ws(end)
            sep = text[pos:pos + 1]
            if sep == ",":
                pos = ws(pos + 1)
                continue
            if sep == "]":
                pos += 1
                break
            raise BadJson("not valid JSON", f"Expecting ',' delimiter at {pos}")
    if ws(pos) != len(text):
        raise BadJson("not valid JSON", f"Extra data at {ws(pos)}")


# ------------------------------------------------------------------------------------------ quarantine
@dataclass
class Quarantined:
    file: str
    index: int | None  # position in the file (unit below); None: the whole file
    unit: str  # "message", "line", "entry", "file"
    reason: str  # a fixed phrase: never a value of the record
    detail: str = ""  # for error messages only (may quote a value: never written to the lake)


@dataclass
class Quarantine:
    """Records of one import run that do not parse. Written with `write`; or `reject` raises."""

    source: str
    export: str
    mode: BadRecords = "quarantine"
    items: list[Quarantined] = field(default_factory=list)

    def add(self, file: str, index: int | None, reason: str, *, unit: str = "record", detail: str = "") -> None:
        self.items.append(Quarantined(file, index, "file" if index is None else unit, reason, detail))

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(i.reason for i in self.items).items()))

    def lines(self, limit: int = 20) -> str:
        shown = [f"{i.file}" + (f": {i.unit} {i.index}" if i.index is not None else "") +
                 f": {i.detail or i.reason}" for i in self.items[:limit]]
        more = [f"... and {len(self.items) - limit} more"] if len(self.items) > limit else []
        return "\n  ".join(shown + more)

    def directory(self, lake_dir: Path) -> Path:
        return Path(lake_dir) / "quarantine" / "raw" / f"source={self.source}"

    def write(self, lake_dir: Path, start: dt.date, end: dt.date) -> Path | None:
        """One JSON file for this run (None when nothing was quarantined): file, index, unit and reason of
        each record; no value of any record."""
        if not self.items:
            return None
        now = dt.datetime.now(dt.UTC)
        target = self.directory(lake_dir) / (f"interval={start.isoformat()}_{end.isoformat()}-"
                                             f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}.json")
        doc = {"source": self.source, "export": self.export, "interval": [start.isoformat(), end.isoformat()],
               "written_at": now.isoformat(timespec="seconds"), "quarantined": self.counts(),
               "total": len(self.items),
               "records": [{"file": i.file, "unit": i.unit, "index": i.index, "reason": i.reason}
                           for i in self.items[:MAX_QUARANTINE_RECORDS]],
               "records_omitted": max(0, len(self.items) - MAX_QUARANTINE_RECORDS)}
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{target.name}")
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        log.warning("%s: %d record(s) of %s quarantined (%s), listed in %s", self.source, len(self.items),
                    self.export, self.counts(), target)
        return target

    def details(self, path: Path | None) -> dict[str, Any]:
        """The `ExtractReport.details` keys: `quarantined` {reason: count}, `quarantine_file`."""
        return {"quarantined": self.counts(), "quarantine_file": str(path) if path else None}

