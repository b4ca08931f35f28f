"""``nopaingan dataset cache``: run the frozen models once, so training never does.

For every album the cache holds what the frozen encoders give: the VAE latent distribution of the cover
(mean and standard deviation, scaled, so training still draws a fresh latent sample each time as the
re-encoding loop did), the CLIP text embedding of the prompt ``[77, 768]`` and the music embedding of the
25 s clip ``[T, D]``. They are written in safetensors shards of ``shard_size`` albums; each shard's
metadata says which encoder, SD model and settings made it and lists its albums with a fingerprint of their
files, so the shards themselves are the manifest of what is done. A killed run resumes by skipping albums
already in a shard with the same fingerprint; shards from other encoders or settings are refused, not mixed.
Processes started by ``accelerate launch`` each take a share of the albums and write their own shards.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from nopaingan_core.audio import CLIP_SECONDS, AudioClip, load_audio
from nopaingan_core.encoders import EncoderInfo, MusicEmbedding, detect_kind, load_encoder
from nopaingan_core.errors import NoPainGanError
from nopaingan_core.hub import is_local
from nopaingan_core.precision import DTYPES
from nopaingan_core.prompt import DEFAULT_TEMPLATE
from nopaingan_core.sampling import DEFAULT_SD, load_minisd

from .atomic import check_not_being_written, save_safetensors, write_text
from .errors import DatasetError, count_text
from .records import Album, read_dataset

CACHE_DIR = "cache"
FORMAT = "nopaingan-cache"
FORMAT_VERSION = 1
METADATA_KEY = "nopaingan_cache"
SHARD_GLOB = "shard-*.safetensors"
SKIPPED_GLOB = "skipped*.jsonl"  # albums a cache run could not read, one JSON object per line, per process
# what an interrupted write of a shard or skipped list leaves (nopaingan_core.atomic.temporary_beside)
_CACHE_TEMPORARY = re.compile(r"\.(shard-.+\.safetensors|skipped.*\.jsonl)\..+\.tmp")
STORE_DTYPES = DTYPES  # the cache stores music features in any of the precisions the product runs in
RESOLUTION = 256
TENSORS = ("latent_mean", "latent_std", "text", "music")


@dataclass(frozen=True)
class CacheSpec:
    """What every shard of one cache must agree on: mixing any of it would train on inconsistent inputs."""

    sd: str
    encoder: EncoderInfo
    resolution: int = RESOLUTION
    clip_seconds: float = CLIP_SECONDS
    prompt_template: str = DEFAULT_TEMPLATE
    store_dtype: str = "bf16"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CacheSpec:
        return cls(**{**data, "encoder": EncoderInfo(**data["encoder"])})

    def resolved(self) -> CacheSpec:
        """This spec with its SD and music model folders as absolute paths, as :func:`cache_dataset` records them:
        earlier versions recorded a relative ``--mir`` folder, made absolute here where it names a folder from the
        working one (elsewhere, or a hub id, it stays as it is)."""
        encoder = replace(self.encoder, model=_recorded_source(self.encoder.model))
        return replace(self, sd=_recorded_source(self.sd), encoder=encoder)

    def differences(self, other: CacheSpec) -> list[str]:
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {theirs[k]!r} vs {mine[k]!r}" for k in mine if mine[k] != theirs[k]]


@dataclass(frozen=True)
class CachedAlbum:
    """One album's cached tensors (float32) and where its music clip came from."""

    id: str
    prompt: str
    latent_mean: torch.Tensor  # [4, h, w], scaled by the VAE's scaling factor
    latent_std: torch.Tensor  # [4, h, w]
    text: torch.Tensor  # [77, 768]
    music: torch.Tensor  # [T, D]
    offset: float
    duration: float

    def sample_latent(self, generator: torch.Generator) -> torch.Tensor:
        """A latent drawn from the cover's VAE distribution, as ``vae.encode(x).latent_dist.sample()``."""
        eps = torch.randn(self.latent_mean.shape, generator=generator)
        return self.latent_mean + self.latent_std * eps

    def embedding(self, encoder: EncoderInfo) -> MusicEmbedding:
        return MusicEmbedding(self.music[None], encoder, self.offset, self.duration)


@dataclass(frozen=True)
class CacheReport:
    out: Path
    albums: int
    encoded: int
    reused: int
    main_process: bool = True  # under `accelerate launch`, only the main process reports
    skipped: tuple[dict, ...] = ()  # this process's albums that could not be read: {"id", "reason"}

    def summary(self) -> str:
        albums = count_text(self.albums, "album")
        line = f"cache {self.out}: {albums} ({self.encoded} encoded now, {self.reused} already cached)"
        if self.skipped:
            line += f", skipped {len(self.skipped)} unreadable (see {self.out / 'skipped.jsonl'})"
        return line


def file_stats(album: Album) -> list[list[int]]:
    """``[size, modification time in ns]`` of the album's cover and audio file: what :func:`unchanged` compares
    first, as make and rsync do, before reading any file."""
    return [[(st := p.stat()).st_size, st.st_mtime_ns] for p in (album.cover, album.audio)]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(album: Album, spec: CacheSpec) -> str:
    """Changes when the album's prompt or the bytes of its cover or audio file change, so those albums are encoded
    again; unchanged ones are reused. It reads both files (SHA-256): a copy of the dataset (``cp -r`` without
    ``-p``, a sync that does not keep modification times) is the same dataset. Raises OSError for a file that
    cannot be read."""
    text = json.dumps([album.prompt(spec.prompt_template), [_file_digest(p) for p in (album.cover, album.audio)]])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _stat_fingerprint(album: Album, spec: CacheSpec) -> str:
    """The fingerprint of caches made before :func:`fingerprint` read the files (prompt, file names, sizes and
    modification times), so that their entries stay usable while the files are untouched."""
    files = [(str(p.name), p.stat().st_size, p.stat().st_mtime_ns) for p in (album.cover, album.audio)]
    text = json.dumps([album.prompt(spec.prompt_template), files])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def unchanged(album: Album, spec: CacheSpec, entry: dict) -> bool:
    """Whether the cache ``entry`` (a shard's album record) holds ``album`` as it is now. Files whose size and
    modification time are those recorded (``entry["stats"]``) with the same prompt are taken as unchanged without
    reading them; otherwise their bytes decide (:func:`fingerprint`). Entries from before ``stats`` was recorded
    match by their own size-and-time fingerprint, or by content once re-encoded. Raises OSError for a file that
    cannot be read."""
    if entry.get("stats") == file_stats(album) and entry.get("prompt") == album.prompt(spec.prompt_template):
        return True
    if "stats" not in entry and entry["fingerprint"] == _stat_fingerprint(album, spec):
        return True
    return entry["fingerprint"] == fingerprint(album, spec)


class CacheReader:
    """Index of a cache folder from its shard headers; reads one album's tensors on demand.

    When an album appears in several shards (it was encoded again after its files changed), the newest
    shard wins: shard names start with the time their run began.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        run_cache = "run `nopaingan dataset cache DATA --sd ... --mir ...` first"
        if not self.folder.is_dir():
            what = " is a file" if self.folder.exists() else ": no such folder"
            raise DatasetError(f"{self.folder}{what}, expected a cache folder; {run_cache} or pass --cache DIR")
        shards = sorted(self.folder.glob(SHARD_GLOB))
        if not shards:
            raise DatasetError(f"{self.folder}: no cache shards; {run_cache}")
        self.spec: CacheSpec | None = None
        self.entries: dict[str, tuple[Path, dict]] = {}
        for shard in shards:
            spec, albums = read_shard_header(shard)
            spec = spec.resolved()
            if self.spec is None:
                self.spec = spec
            elif spec != self.spec:
                changed = "; ".join(spec.differences(self.spec))
                raise DatasetError(f"{shard}: made with other settings than {shards[0].name} ({changed})")
            for entry in albums:
                self.entries[entry["id"]] = (shard, entry)
        self.skipped = read_skipped(self.folder)

    def __contains__(self, album_id: str) -> bool:
        return album_id in self.entries

    def missing(self, albums: Sequence[Album]) -> list[str]:
        return [a.id for a in albums if a.id not in self.entries]

    def usable(self, albums: Sequence[Album]) -> list[Album]:
        """``albums`` but those the cache run skipped as unreadable (its skipped.jsonl) and did not encode since."""
        return [a for a in albums if a.id in self.entries or a.id not in self.skipped]

    def stale(self, albums: Sequence[Album]) -> list[str]:
        """The ids of the cached ``albums`` whose files changed since they were cached (their fingerprint)."""
        return [a.id for a in albums if a.id in self.entries and not unchanged(a, self.spec, self.entries[a.id][1])]

    def require(self, albums: Sequence[Album]) -> list[Album]:
        """The albums to train or evaluate on: all but those the cache run skipped as unreadable (its
        skipped.jsonl). Refuses albums the cache lacks otherwise, or whose files changed since they were cached."""
        albums = self.usable(albums)
        missing, stale = self.missing(albums), self.stale(albums)
        not_cached = "is not cached" if len(missing) == 1 else "are not cached"
        for what, ids in ((not_cached, missing), ("changed since they were cached", stale)):
            if ids:
                raise DatasetError(
                    f"{self.folder}: {len(ids)} of {count_text(len(albums), 'album')} {what} "
                    f"(e.g. {', '.join(ids[:3])}); run `nopaingan dataset cache` again"
                )
        return albums

    def load(self, album_id: str) -> CachedAlbum:
        shard, entry = self.entries[album_id]
        with safe_open(str(shard), "pt") as f:
            tensors = {name: f.get_tensor(f"{album_id}/{name}").float() for name in TENSORS}
        return CachedAlbum(album_id, entry["prompt"], offset=entry["offset"], duration=entry["duration"], **tensors)


def cache_options(spec: CacheSpec) -> str:
    """The ``nopaingan dataset cache`` options that make a cache with ``spec`` again (shell-quoted): the models
    and the layer always, the other settings where they are not the command's defaults."""
    options = ["--sd", spec.sd, "--mir", spec.encoder.model, "--kind", spec.encoder.kind]
    options += ["--layer", str(spec.encoder.layer)]
    defaults = {"--resolution": RESOLUTION, "--clip-seconds": CLIP_SECONDS, "--store-dtype": "bf16"}
    given = {"--resolution": spec.resolution, "--clip-seconds": spec.clip_seconds, "--store-dtype": spec.store_dtype}
    for name, value in given.items():
        if value != defaults[name]:
            options += [name, f"{value:g}" if isinstance(value, float) else str(value)]
    return " ".join(shlex.quote(option) for option in options)


def cache_behind(data: Path, folder: Path) -> tuple[CacheSpec | None, list[str]]:
    """The settings the cache ``folder`` of the dataset ``data`` was made with (None when it cannot be read) and
    the ids of ``data``'s albums it does not hold as they are now: not cached (nor skipped by a cache run as
    unreadable), or changed since (their fingerprint). Training refuses exactly these albums."""
    try:
        reader = CacheReader(folder)
        albums = reader.usable(read_dataset(data))
    except (DatasetError, OSError):
        return None, []
    return reader.spec, reader.missing(albums) + reader.stale(albums)


def read_skipped(folder: Path) -> dict[str, str]:
    """Album id -> reason, for the albums cache runs into ``folder`` skipped (not encoded since)."""
    skipped = {}
    for path in sorted(folder.glob(SKIPPED_GLOB)):
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):
                item = json.loads(line)
                skipped[item["id"]] = item["reason"]
    return skipped


def read_shard_header(shard: Path) -> tuple[CacheSpec, list[dict]]:
    """A shard's settings and album list, from its header only (no tensor is read)."""
    try:
        with safe_open(str(shard), "pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError) as exc:
        raise DatasetError(
            f"{shard}: not a readable safetensors file ({exc}); delete it and run the cache again"
        ) from exc
    if raw is None:
        raise DatasetError(f"{shard}: no '{METADATA_KEY}' metadata; not a No-Pain-No-GAN cache shard")
    try:
        meta = json.loads(raw)
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"{shard}: expected {FORMAT} version {FORMAT_VERSION}, found {meta.get('format')} "
                f"version {meta.get('format_version')}; delete the cache folder and run the cache again"
            )
        return CacheSpec.from_dict(meta["spec"]), meta["albums"]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(
            f"{shard}: malformed cache metadata ({exc!r}); delete this shard and run the cache again"
        ) from exc


class ShardWriter:
    """Collects albums and writes a shard every ``shard_size`` of them (and whatever is left on close)."""

    def __init__(self, folder: Path, spec: CacheSpec, shard_size: int, rank: int) -> None:
        self.folder, self.spec, self.shard_size, self.rank = folder, spec, shard_size, rank
        self.stamp = time.time_ns()
        self.count = 0
        self.tensors: dict[str, torch.Tensor] = {}
        self.albums: list[dict] = []

    def add(self, entry: dict, tensors: dict[str, torch.Tensor]) -> None:
        dtype = STORE_DTYPES[self.spec.store_dtype]
        for name, value in tensors.items():
            self.tensors[f"{entry['id']}/{name}"] = value.detach().to("cpu", dtype).contiguous()
        self.albums.append(entry)
        if len(self.albums) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.albums:
            return
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": self.spec.to_dict(), "albums": self.albums}
        path = self.folder / f"shard-{self.stamp}-{self.rank:03d}-{self.count:05d}.safetensors"
        save_safetensors(self.tensors, path, {METADATA_KEY: json.dumps(meta)})
        self.count += 1
        self.tensors, self.albums = {}, []


def cover_pixels(path: Path, resolution: int) -> torch.Tensor:
    """The cover centre-cropped to a square and resized: ``[resolution, resolution, 3]`` in [0, 1]."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = ImageOps.fit(image.convert("RGB"), (resolution, resolution), Image.Resampling.BICUBIC)
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"{path}: cover is not a readable image ({exc})") from exc
    return torch.from_numpy(np.asarray(image).copy()).float() / 255.0


class _AlbumFiles(torch.utils.data.Dataset):
    """Decoding covers and audio, in DataLoader workers when asked, while the models encode."""

    def __init__(self, albums: Sequence[Album], spec: CacheSpec) -> None:
        self.albums, self.spec = albums, spec

    def __len__(self) -> int:
        return len(self.albums)

    def __getitem__(self, index: int) -> tuple[Album, torch.Tensor, AudioClip] | tuple[Album, str]:
        """The album's cover pixels and clip, or the reason it cannot be read (the batch goes on without it)."""
        album = self.albums[index]
        try:
            return (
                album,
                cover_pixels(album.cover, self.spec.resolution),
                load_audio(album.audio, None, self.spec.clip_seconds),
            )
        except NoPainGanError as exc:
            return album, str(exc)


def _encode_music(encoder, clips: list[AudioClip], seconds: float) -> list[torch.Tensor]:
    """One ``[T, D]`` embedding per clip; clips of the same length and rate are encoded as one batch."""
    groups: dict[tuple, list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault((clip.sample_rate, clip.waveform.shape[1:]), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(clips)
    for indices in groups.values():
        first = clips[indices[0]]
        batch = AudioClip(torch.cat([clips[i].waveform for i in indices]), first.sample_rate, first.offset)
        features = encoder.encode(batch, max_seconds=seconds).features
        for row, i in enumerate(indices):
            out[i] = features[row]
    return out


def cache_dataset(
    data: str | Path,
    sd: str = DEFAULT_SD,
    mir: str | None = None,
    *,
    kind: str | None = None,
    layer: int | None = None,
    out: str | Path | None = None,
    resolution: int = RESOLUTION,
    clip_seconds: float = CLIP_SECONDS,
    prompt_template: str = DEFAULT_TEMPLATE,
    store_dtype: str = "bf16",
    batch_size: int = 8,
    shard_size: int = 64,
    workers: int = 0,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> CacheReport:
    """Encode every album of ``data`` not cached yet into ``out`` (default ``data/cache``).

    Under ``accelerate launch`` each process encodes its share on its own device; run alone it uses the
    GPU when there is one. ``dtype`` is the models' compute dtype, ``store_dtype`` the shards' (bf16 halves
    the disk space of fp32 and keeps its range; the music embedding dominates: 25 s of MusicGen-small's
    middle layer is 1250 x 1024 values).
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env
    from tqdm import tqdm

    from nopaingan_core.encoders import DEFAULT_MODELS

    if store_dtype not in STORE_DTYPES:
        raise NoPainGanError(f"unknown store dtype {store_dtype!r}; expected one of {', '.join(STORE_DTYPES)}")
    if resolution % 8 or resolution <= 0:
        raise NoPainGanError(f"resolution must be a positive multiple of 8, found {resolution}")
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))  # as AcceleratorState reads it
    data = Path(data)
    folder = Path(out) if out is not None else data / CACHE_DIR
    check_not_being_written(data, "DATA")  # an import still running would leave albums out
    albums = read_dataset(data)
    if not albums:
        raise DatasetError(f"{data}: metadata.jsonl lists no albums")
    check_cache_folder(folder)  # before the models load: a run writes shards and skipped.jsonl there
    mir = _source(mir or DEFAULT_MODELS["codified-lm"])  # recorded (and compared) as --sd: folders absolute
    encoder = load_encoder(kind or detect_kind(mir), mir, layer, state.device, dtype)
    spec = CacheSpec(_source(sd), encoder.info, resolution, clip_seconds, prompt_template, store_dtype)

    done: dict[str, dict] = {}
    if folder.is_dir() and any(folder.glob(SHARD_GLOB)):
        reader = CacheReader(folder)
        if reader.spec != spec:
            raise DatasetError(
                f"{folder}: cache was made with other settings ({'; '.join(spec.differences(reader.spec))}); "
                "use another --out folder or delete this one"
            )
        done = {album_id: entry for album_id, (_, entry) in reader.entries.items()}
    records, skipped, reused = {}, [], 0  # records: id -> (fingerprint, file stats) of the albums to encode
    for album in albums:
        try:
            if album.id in done and unchanged(album, spec, done[album.id]):
                reused += 1
            else:
                stats = file_stats(album)  # before reading: a file changed meanwhile is read again next run
                records[album.id] = (fingerprint(album, spec), stats)
        except OSError as exc:
            skipped.append({"id": album.id, "reason": f"{exc.filename}: {exc.strerror}"})
    todo = [album for album in albums if album.id in records]
    folder.mkdir(parents=True, exist_ok=True)

    if todo:
        sd_model = load_minisd(str(sd), state.device, dtype, channels_last=False)
        with state.split_between_processes(todo) as mine:
            writer = ShardWriter(folder, spec, shard_size, state.process_index)
            loader = torch.utils.data.DataLoader(
                _AlbumFiles(mine, spec), batch_size=batch_size, num_workers=workers, collate_fn=list
            )
            bar = tqdm(
                total=len(mine), desc="caching albums", unit="album", disable=not (progress and state.is_main_process)
            )
            try:
                for batch in loader:
                    readable = [item for item in batch if len(item) == 3]
                    skipped += [{"id": item[0].id, "reason": item[1]} for item in batch if len(item) == 2]
                    if readable:
                        _encode_batch(readable, sd_model, encoder, spec, records, writer)
                    bar.update(len(batch))
            finally:
                writer.flush()  # whatever was encoded before an error or Ctrl-C is kept
                bar.close()
    name = "skipped.jsonl" if state.process_index == 0 else f"skipped-{state.process_index:03d}.jsonl"
    write_text(folder / name, "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in skipped))
    state.wait_for_everyone()
    encoded = len(todo) - sum(1 for item in skipped if item["id"] in records)
    return CacheReport(folder, len(albums), encoded, reused, state.is_main_process, tuple(skipped))


def check_cache_folder(folder: Path) -> None:
    """Refuse (:class:`DatasetError`, one line naming the folder and the first files found) a cache folder that
    holds anything but what cache runs write there (:data:`SHARD_GLOB`, :data:`SKIPPED_GLOB` and the temporary
    files of an interrupted write): a run rewrites ``skipped.jsonl`` and adds shards, so a dataset folder
    (``dataset fetch`` and ``import`` keep their own ``skipped.jsonl`` there) or any folder of the user's would
    lose a file and gain shards. A missing or empty folder is a new cache."""
    if not folder.is_dir():
        if folder.exists():
            raise DatasetError(f"{folder}: expected a cache folder, found a file; use another --out")
        return
    foreign = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in folder.iterdir() if not _written(entry))
    if foreign:
        more = f" (and {len(foreign) - 5} more)" if len(foreign) > 5 else ""
        dataset = " (a dataset folder: its cache goes in cache/ by default)" if "metadata.jsonl" in foreign else ""
        raise DatasetError(
            f"{folder}: expected a new, empty or cache folder written by `nopaingan dataset cache` "
            f"(shard-*.safetensors, skipped.jsonl), found also {', '.join(foreign[:5])}{more}{dataset}; "
            "use another --out (a cache run rewrites skipped.jsonl and adds shards there)"
        )


def _written(entry: Path) -> bool:
    """Whether ``entry`` of a cache folder is one a cache run wrote: a shard, a temporary file of an interrupted
    write, or a skipped list in the run's own format (JSON objects of "id" and "reason": a ``skipped.jsonl`` of
    ``dataset fetch`` or of the user's is not)."""
    if entry.is_dir() or entry.is_symlink():
        return False
    if fnmatch.fnmatchcase(entry.name, SHARD_GLOB) or _CACHE_TEMPORARY.fullmatch(entry.name):
        return True
    if not fnmatch.fnmatchcase(entry.name, SKIPPED_GLOB):
        return False
    try:
        rows = [json.loads(line) for line in entry.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return all(isinstance(row, dict) and set(row) == {"id", "reason"} for row in rows)


def _source(source: str) -> str:
    """A model folder as an absolute path (training finds it from any directory), a hub id as it is."""
    return str(Path(source).expanduser().resolve()) if is_local(source) else str(source)


def _recorded_source(source: str) -> str:
    """A model source read from a shard: a folder that exists from here as an absolute path (:func:`_source`),
    anything else (a hub id, a relative folder recorded from another working folder) as it is."""
    return _source(source) if Path(source).expanduser().is_dir() else source


@torch.no_grad()
def _encode_batch(
    batch, sd_model, encoder, spec: CacheSpec, records: dict[str, tuple[str, list]], writer: ShardWriter
) -> None:
    albums, covers, clips = zip(*batch, strict=True)
    prompts = [album.prompt(spec.prompt_template) for album in albums]
    pixels = torch.stack(covers).permute(0, 3, 1, 2).to(sd_model.device, sd_model.dtype) * 2 - 1
    dist = sd_model.vae.encode(pixels).latent_dist
    scale = sd_model.vae.config.scaling_factor
    means, stds = dist.mean * scale, dist.std * scale
    texts = sd_model.encode_prompt(prompts)
    music = _encode_music(encoder, list(clips), spec.clip_seconds)
    for i, album in enumerate(albums):
        entry = {
            "id": album.id,
            "fingerprint": records[album.id][0],
            "stats": records[album.id][1],
            "prompt": prompts[i],
            "offset": round(clips[i].offset, 3),
            "duration": round(clips[i].duration, 3),
        }
        writer.add(entry, {"latent_mean": means[i], "latent_std": stds[i], "text": texts[i], "music": music[i]})
