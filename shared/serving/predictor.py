"""A BankMarketingModel compiled for the scoring hot path.

The scikit-learn wrappers spend about a millisecond per call checking their input; the boosters
and trees underneath need tens of microseconds. Each member of the blend gets the direct call
of its library (LightGBM booster, XGBoost in-place predict, the forest's trees), single-threaded
for small batches, and the blend is summed exactly as `BankMarketingModel.proba_from_matrix`
does. XGBoost's per-call cost (about 0.2 ms a booster) dominates small requests, so for batches
under SMALL_BATCH rows its boosters run as ONNX Runtime tree ensembles (`onnx_trees`), which
agree with XGBoost to 1e-6 (checked at load); `exact=True` (batch scoring) keeps XGBoost's own answers.
At load, each fast call is checked against the member's own `predict_proba` on sample rows and on
single rows; a member whose fast call differs keeps its `predict_proba`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.model import BankMarketingModel
from shared.serving import native_trees
from shared.serving.onnx_trees import xgboost_session

log = logging.getLogger("bankops.serving")

LARGE_BATCH = 2_000  # rows from which CatBoost may use several threads
SMALL_BATCH = 64  # fewer rows: one thread (XGBoost through ONNX Runtime); this many and more: every core
# (measured on 2 cores, 100 rows through 5 fold boosters: LightGBM 1.1 ms on one thread, 0.6 ms on two)
NATIVE_BATCH = LARGE_BATCH  # rows from which batch scoring runs boosters compiled to native code (`native_trees`)
# Fewer trees stay on the library: a 4-tree LightGBM member scores 1M rows in about 0.1 s, while its
# compile children cost seconds of CPU (measured: a cold run 2.5 s slower than the libraries-only one).
NATIVE_MIN_TREES = 16
TOLERANCE = 1e-9  # the libraries' own calls, reached faster: the same sums
TOLERANCE_FLOAT32 = 1e-6  # the scoring contract; ONNX Runtime's float32 sums in another order differ by up to ~7e-8
ProbaFn = Callable[[np.ndarray], np.ndarray]


def _threads(rows: int) -> int:
    return 1 if rows < SMALL_BATCH else 0  # 0: the library's default (all cores)


def _lightgbm_single_row(booster: Any) -> Callable[[np.ndarray], float]:
    """LightGBM's C API for one row with a prepared config: no per-call predictor setup."""
    from lightgbm.basic import _LIB, _c_str, _safe_call  # type: ignore[attr-defined]  # the C API handle, private by name

    config = ctypes.c_void_p()
    num_iteration = booster.best_iteration if booster.best_iteration > 0 else -1
    _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
        booster._handle, ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(num_iteration), ctypes.c_int(1),  # normal, float64
        ctypes.c_int32(booster.num_feature()), _c_str("num_threads=1"), ctypes.byref(config)))
    weakref.finalize(booster, _LIB.LGBM_FastConfigFree, config)  # frees it with the booster
    out = np.zeros(1, dtype=np.float64)
    out_ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
    out_len = ctypes.c_int64()
    out_len_ref = ctypes.byref(out_len)
    row_in = np.zeros(booster.num_feature(), dtype=np.float64)  # the row is copied here: its pointer is made once
    row_ptr = row_in.ctypes.data_as(ctypes.c_void_p)
    predict = _LIB.LGBM_BoosterPredictForMatSingleRowFast

    def one(row: np.ndarray) -> float:
        row_in[:] = row
        _safe_call(predict(config, row_ptr, out_len_ref, out_ptr))
        return float(out[0])

    return one


def _lightgbm(estimator: Any) -> ProbaFn | None:
    booster = getattr(estimator, "booster_", None)
    if booster is None or getattr(estimator, "n_classes_", 2) != 2:
        return None
    try:
        one = _lightgbm_single_row(booster)
    except Exception:  # an older or newer library without the fast single-row API
        log.info("LightGBM single-row API unavailable; using Booster.predict", exc_info=True)
        return lambda x: booster.predict(x, num_threads=_threads(len(x)))

    def proba(x: np.ndarray) -> np.ndarray:
        if len(x) == 1:
            return np.array([one(x[0])])
        out: np.ndarray = booster.predict(x, num_threads=_threads(len(x)))
        return out

    return proba


def _xgboost(estimator: Any, exact: bool) -> ProbaFn | None:
    if getattr(estimator, "n_classes_", 2) != 2 or not hasattr(estimator, "get_booster"):
        return None
    booster = estimator.get_booster()
    iteration_range = estimator._get_iteration_range(None)
    missing = estimator.missing
    single, every_core = booster.copy(), booster.copy()
    single.set_param({"nthread": 1})
    every_core.set_param({"nthread": os.cpu_count() or 1})  # explicit: n_jobs=1 on the estimator reaches its booster
    small = None if exact else xgboost_session(estimator, estimator.n_features_in_)

    def proba(x: np.ndarray) -> np.ndarray:
        if len(x) < SMALL_BATCH and small is not None:
            return small(x)
        # OpenMP's threads cost more than they save below LARGE_BATCH rows (measured in a serving worker:
        # 100 rows through a 4-tree booster took 0.8 ms on two threads), and the workers already fill the cores
        chosen = single if len(x) < LARGE_BATCH else every_core
        out: np.ndarray = chosen.inplace_predict(x, iteration_range=iteration_range, predict_type="value", missing=missing,
                                                 validate_features=False)
        return out

    return proba


def _forest(estimator: Any) -> ProbaFn | None:
    trees = getattr(estimator, "estimators_", None)
    if not trees or getattr(estimator, "n_classes_", 2) != 2:
        return None

    def proba(x: np.ndarray) -> np.ndarray:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        total = np.zeros((len(x), 2), dtype=np.float64)
        for tree in trees:
            total += tree.predict_proba(x32, check_input=False)
        total /= len(trees)
        return total[:, 1]

    return proba


def _catboost(estimator: Any) -> ProbaFn | None:
    if getattr(estimator, "classes_", None) is None or len(estimator.classes_) != 2:
        return None
    return lambda x: estimator.predict_proba(x, thread_count=1 if len(x) < LARGE_BATCH else -1)[:, 1]


def _soft_vote(estimator: Any, exact: bool) -> ProbaFn | None:
    """The mean of fold models (VotingClassifier, soft, no weights), each by its fast call."""
    if estimator.voting != "soft" or estimator.weights is not None:
        return None
    inner = [_fast_call(e, exact) for e in estimator.estimators_]
    if not all(inner):
        return None
    calls = [f for f in inner if f is not None]
    return lambda x: np.asarray([f(x) for f in calls]).mean(axis=0)


def _fast_call(estimator: Any, exact: bool = False) -> ProbaFn | None:
    kind = type(estimator).__name__
    if kind == "FrozenEstimator":
        return _fast_call(estimator.estimator, exact)
    if kind == "VotingClassifier":
        return _soft_vote(estimator, exact)
    if kind == "LGBMClassifier":
        return _lightgbm(estimator)
    if kind == "XGBClassifier":
        return _xgboost(estimator, exact)
    if kind == "CatBoostClassifier":
        return _catboost(estimator)
    if kind in ("RandomForestClassifier", "ExtraTreesClassifier"):
        return _forest(estimator)
    return None


def _parts(estimator: Any) -> list[Any]:
    """The estimator and everything it wraps: pipeline steps, voting members, frozen models."""
    inner: list[Any] = []
    if getattr(estimator, "steps", None):
        inner = [step for _, step in estimator.steps]
    elif type(estimator).__name__ == "FrozenEstimator":
        inner = [estimator.estimator]
    elif getattr(estimator, "estimators_", None) is not None and type(estimator).__name__ == "VotingClassifier":
        inner = list(estimator.estimators_)
    return [estimator, *(p for part in inner for p in _parts(part))]


def _single_threaded(estimator: Any) -> None:
    """n_jobs=1 wherever a model or what it wraps has it: joblib and OpenMP cost ms per small call."""
    for part in _parts(estimator):
        if type(part).__name__ == "FrozenEstimator" or not hasattr(part, "get_params"):
            continue
        if "n_jobs" in part.get_params(deep=False):
            part.set_params(n_jobs=1)


def _agrees(fast: ProbaFn, slow: ProbaFn, x: np.ndarray, tolerance: float, single_rows: int = 8) -> bool:
    """Same answers on the whole sample, on a small batch and on single rows (fast calls pick a
    path by batch size)."""
    batches = [x, x[:SMALL_BATCH - 1], *(x[i:i + 1] for i in range(min(single_rows, len(x))))]
    return all(np.allclose(fast(b), slow(b), rtol=0, atol=tolerance) for b in batches)


def native_cache() -> Path:
    """Where compiled boosters are kept: one file per model file's hash, so any home can share it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bankops" / "trees"


# The members batch scoring may run compiled (`native_trees`): their model file, and how close the
# compiled answers must be to the library's (XGBoost sums its leaves in float32: the contract's tolerance).
_NATIVE: dict[str, tuple[Callable[[Any], str | None], float]] = {
    "LGBMClassifier": (native_trees.lightgbm_text, TOLERANCE),
    "XGBClassifier": (native_trees.xgboost_text, TOLERANCE_FLOAT32),
}


class _NativeOrLibrary:
    """A member's booster compiled to native code for batches of NATIVE_BATCH rows and more; the
    library's call below that. Compiled on the first large batch (seconds, then cached), or, in
    `background` mode, in a detached child while large batches keep the library's call until the
    machine code is there; used only if it agrees with the member's `predict_proba` on the
    verification sample."""

    def __init__(self, learner: str, estimator: Any, library: ProbaFn, reference: ProbaFn, sample: np.ndarray) -> None:
        self.learner, self.estimator, self.library, self.reference, self.sample = learner, estimator, library, reference, sample
        self.native: ProbaFn | None = None
        self.tried = False  # settled: the machine code is in use, or the library stays
        self.background = False
        self._text: str | None = None
        self._compilation: native_trees.Compilation | None = None

    def text(self) -> str | None:
        """The member's LightGBM model file (None: it cannot be written as one)."""
        if self._text is None and not self.tried:
            try:
                self._text = _NATIVE[type(self.estimator).__name__][0](self.estimator)
            except Exception:
                log.warning("native trees of %s unavailable; using the library", self.learner, exc_info=True)
                self.tried = True
            if self._text is not None and self._text.count("\nTree=") < NATIVE_MIN_TREES:
                self._text = None  # the library walks a handful of trees about as fast: compiling would cost more
            if self._text is None:
                self.tried = True
        return self._text

    def compilation(self) -> native_trees.Compilation | None:
        if self._compilation is None and (text := self.text()) is not None:
            self._compilation = native_trees.Compilation(text, native_cache())
        return self._compilation

    def _adopt(self, native: ProbaFn) -> None:
        self.tried = True
        if _agrees(native, self.reference, self.sample, _NATIVE[type(self.estimator).__name__][1]):
            self.native = native
        else:
            log.warning("native trees of %s disagree with predict_proba; using the library", self.learner)

    def prepare(self) -> None:
        """Compile now (waiting) unless settled."""
        if self.tried or (text := self.text()) is None:
            return
        try:
            self._adopt(native_trees.compile_text(text, native_cache()))
        except Exception:  # a compiler or cache problem costs speed, never an answer
            self.tried = True
            log.warning("native trees of %s unavailable; using the library", self.learner, exc_info=True)

    def poll(self) -> None:
        """Switch to the machine code if it is in the cache now; never waits."""
        if self.tried or (compilation := self.compilation()) is None or not compilation.ready():
            return
        try:
            self._adopt(compilation.load())
        except Exception:
            self.tried = True
            log.warning("native trees of %s unavailable; using the library", self.learner, exc_info=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) < NATIVE_BATCH:
            return self.library(x)
        if self.background:
            self.poll()
        else:
            self.prepare()
        return self.native(x) if self.native is not None else self.library(x)


@dataclass
class CompiledModel:
    """P("yes") for an encoded matrix, equal to the model's own `proba_from_matrix`."""

    model: BankMarketingModel
    calls: list[tuple[float, ProbaFn]] = field(default_factory=list)
    fast_members: list[str] = field(default_factory=list)
    serving_native: list[str] = field(default_factory=list)  # members a serving worker runs compiled, every batch size
    serving_pending: list[native_trees.Compilation] = field(default_factory=list)  # ...and those not compiled yet

    def serving_native_ready(self) -> bool:
        """Every member waiting for its optimised machine code has it now (compiling the model again switches them)."""
        return bool(self.serving_pending) and all(c.linked() for c in self.serving_pending)

    @property
    def native_members(self) -> list[str]:
        """The members whose large batches ran compiled to native code so far."""
        return [c.learner for c in self._natives() if c.native is not None]

    def _natives(self) -> list[_NativeOrLibrary]:
        return [c for _, c in self.calls if isinstance(c, _NativeOrLibrary)]

    def _start(self, *, quick: bool) -> subprocess.Popen[bytes] | None:
        wanted = [c for c in self._natives() if c.native is not None or not c.tried]  # not those that disagreed
        try:
            return native_trees.start_compiling([m for c in wanted if (m := c.compilation()) is not None], quick=quick,
                                                low_priority=quick)  # quick: in the background, beside the run
        except Exception:  # a cache folder that cannot be written: each member falls back on its own
            log.warning("cannot compile native trees in the background", exc_info=True)
            return None

    def native_ready(self) -> bool:
        """Every member that can run natively has its machine code cached (or has settled on its library)."""
        return all(c.tried or (m := c.compilation()) is None or m.ready() for c in self._natives())

    def prepare_native(self) -> list[str]:
        """Compile the native members now (in parallel children), rather than on the first large batch;
        returns those in use."""
        if (process := self._start(quick=False)) is not None:
            try:
                process.wait(timeout=native_trees.COMPILE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("native trees still compiling after %ss; using the libraries meanwhile", native_trees.COMPILE_TIMEOUT_S)
        for call in self._natives():
            call.poll()
            call.prepare()  # a member the children could not compile: tried once more here, or settled on its library
        return self.native_members

    def start_native(self, compile_missing: bool = True) -> bool:
        """Score with the libraries while the missing machine code compiles in the background (quick kind
        first), each member switching on the first large batch after its own appears: a cold run is
        never slower than the libraries. `compile_missing=False`: use what is cached, start nothing (a small
        file). True: something is compiling."""
        for call in self._natives():
            call.background = True
            call.poll()
        return compile_missing and self._start(quick=True) is not None

    def proba(self, x: np.ndarray) -> np.ndarray:
        total = sum(w for w, _ in self.calls)
        if len(x) == 1:  # one row: the same sums in Python floats, without numpy temporaries per member
            acc = 0.0
            for weight, call in self.calls:
                acc += float(weight * call(x)[0])  # the product in the member's dtype, as the array path computes it
            return np.array([acc / total])
        p = np.zeros(len(x), dtype=np.float64)
        for weight, call in self.calls:
            p += weight * call(x)
        return p / total


def start_native_compilation(model: BankMarketingModel, wait_s: float = 0.0) -> subprocess.Popen[bytes] | None:
    """Start compiling a model's LightGBM and XGBoost members to native code in a detached, low-priority
    child (at registration, so its first batch and its serving workers find them cached); every member,
    however few its trees (serving runs them all compiled; batch scoring only those of NATIVE_MIN_TREES
    and more), the quick kind first. `wait_s`: wait that long for every member's quick kind (the optimised
    kind follows in the background; a serving worker switches to it when it lands). The child, or None:
    nothing to compile. Not verified here: batch scoring and serving check each against its member when
    they load it."""
    if not native_trees.available():
        return None
    compilations = [c for member in model.members if (c := _member_compilation(member)) is not None]
    compiler = native_trees.start_compiling(compilations, quick=True, low_priority=True)
    if compiler is not None and wait_s > 0 and not native_trees.wait_usable(compilations, compiler, wait_s):
        log.info("the new version's trees are still compiling after %.0fs; they go on in the background", wait_s)
    return compiler


def _member_compilation(member: Any) -> native_trees.Compilation | None:
    """A LightGBM or XGBoost member's model file in the native cache, of any size (None: not such a member)."""
    native = _NATIVE.get(type(member.estimator).__name__)
    if native is None or not (text := native[0](member.estimator)):
        return None
    return native_trees.Compilation(text, native_cache())


def _serving_native(member: Any, slow: ProbaFn, x: np.ndarray, compiled: CompiledModel) -> ProbaFn | None:
    """A LightGBM or XGBoost member's machine code, one thread, for every batch size (a serving worker
    per core): about 10 us a row against the library's tens to hundreds, checked against its
    `predict_proba` like every fast call. Only a linked shared library (ctypes, no LLVM in the worker): the
    optimised kind, else the quick one; until the optimised kind is cached the member is noted as pending
    (`upgraded()` switches it then), and with neither it keeps its library call meanwhile."""
    compilation = _member_compilation(member)  # any size: a few trees compile in a second
    if compilation is None:
        return None
    if not compilation.linked():
        compiled.serving_pending.append(compilation)
    if not compilation.linked_any():
        return None
    fn = compilation.load(threads=1)
    if not _agrees(fn, slow, x, _NATIVE[type(member.estimator).__name__][1]):
        log.warning("native trees of %s disagree with predict_proba; serving with the library", member.learner)
        return None
    compiled.serving_native.append(member.learner)
    return fn


def compile_model(model: BankMarketingModel, sample: Sequence[Mapping[str, object]], *, exact: bool = False,
                  native: bool = False, serving_native: bool = False) -> CompiledModel:
    """Pick the fastest verified call for each member; `sample` are records to verify on (at
    least SMALL_BATCH of them, so both XGBoost paths are checked). `exact`: the libraries' own sums
    only (no ONNX Runtime), for batch scoring, whose output must equal the MLflow model's.
    `native` (batch scoring): LightGBM and XGBoost members run compiled to native code on large
    batches, when lleaves is installed (`native_trees`). `serving_native` (a serving worker): those
    members whose machine code is cached run it for every batch size, on one thread."""
    use_native = native and native_trees.available()
    use_serving_native = serving_native and not exact and native_trees.available()
    x = model.encoder.transform_records(sample)
    compiled = CompiledModel(model)
    for member in model.members:
        _single_threaded(member.estimator)
        reference = member.estimator.predict_proba

        def slow(x: np.ndarray, reference: Any = reference) -> np.ndarray:
            out: np.ndarray = reference(x)[:, 1]
            return out

        call: ProbaFn = slow
        native_call = None
        if use_serving_native:
            try:
                native_call = _serving_native(member, slow, x, compiled)
            except Exception:  # a cache or loader problem costs speed, never an answer
                log.warning("native trees of %s unavailable; serving with the library", member.learner, exc_info=True)
        if native_call is not None:
            call = native_call  # no library fast path to build (XGBoost's ONNX form takes a second for 500 trees)
        else:
            try:
                fast = _fast_call(member.estimator, exact)
                if fast is not None and _agrees(fast, slow, x, TOLERANCE if exact else TOLERANCE_FLOAT32):
                    call = fast
                    compiled.fast_members.append(member.learner)
                elif fast is not None:
                    log.warning("fast path of %s disagrees with predict_proba; using predict_proba", member.learner)
            except Exception:  # a library API that changed: stay on the reference call
                log.warning("fast path of %s unavailable; using predict_proba", member.learner, exc_info=True)
        if use_native and type(member.estimator).__name__ in _NATIVE:
            call = _NativeOrLibrary(member.learner, member.estimator, call, slow, x)
        compiled.calls.append((member.weight, call))
    return compiled
