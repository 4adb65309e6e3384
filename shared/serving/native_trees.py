"""Boosters compiled to native code with lleaves, for batch scoring of large files.

Evaluating a million rows, LightGBM's and XGBoost's own predictors walk about 100-300 million
trees a second on two cores; lleaves compiles a LightGBM model file into machine code (LLVM)
that walks the same trees several times faster (measured on the bench model, 1M rows: a
258-tree LightGBM member 4.83 s -> 0.75 s, with the same answers to 1e-15).

XGBoost boosters are written as LightGBM model files first. XGBoost sends a row left when
`float32(x) < split` and a missing value (NaN) the node's default way; LightGBM sends it left when
`x <= threshold` in double precision, so each split becomes the largest double that still
rounds below the float32 split, and NaN keeps the default direction: every row reaches the same
leaf. XGBoost sums the leaves in float32 and this sums them in double, so probabilities differ
by up to about 5e-7 (measured on 1M rows), within the scoring contract's 1e-6, checked on the
verification sample before use, like every fast path.

Compiling takes seconds (about 3 s for 250 LightGBM trees, 9 s for 500 XGBoost trees), so it runs
in child processes (members in parallel, one per core) and the machine code is cached on disk by
the model file's hash. `start_compiling` does it in the background, in a detached child that
outlives the caller: at registration (`shared.batch.prepare`), and in a cold batch run, which
scores with the libraries meanwhile and switches each member when its machine code appears. Without
lleaves (or llvmlite) installed, `available()` is False and callers keep the libraries' own
predictors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shared.child_env import child_env

log = logging.getLogger("bankops.serving")
ProbaFn = Callable[[np.ndarray], np.ndarray]
_MISSING_NAN = 2 << 2  # LightGBM decision_type: missing type NaN (bits 2-3)
_DEFAULT_LEFT = 1 << 1  # LightGBM decision_type: missing values go left
COMPILE_TIMEOUT_S = 600  # 500 XGBoost trees of depth 5 take about 9 s on 2 cores
LIBRARY = ".lib"  # the shared library linked from a binary (DIGEST.so -> DIGEST.lib)
QUICK = ".quick"  # the name of machine code compiled without inlining (fast to build, slower to run)
CACHE_DAYS = 30  # compiled models unused this long are removed when another is compiled (a 60 s model: about 2 MB)


def available() -> bool:
    """Whether lleaves and a compatible llvmlite are installed (read from their metadata: importing
    llvmlite costs about a second of CPU, which a run whose trees are all cached never needs)."""
    import importlib.metadata as md

    try:
        md.version("lleaves")
        major, minor = (int(part) for part in md.version("llvmlite").split(".")[:2])
    except (md.PackageNotFoundError, ValueError):
        return False
    return (major, minor) < (0, 45)  # lleaves 1.3 needs llvmlite's PassManagerBuilder, gone in 0.45


def lightgbm_text(estimator: Any) -> str | None:
    """The LightGBM model file of a fitted binary LGBMClassifier (None: not one)."""
    if getattr(estimator, "n_classes_", 2) != 2 or not hasattr(estimator, "booster_"):
        return None
    return str(estimator.booster_.model_to_string())


def _left_threshold(split: float) -> float:
    """The largest double x with float32(x) < split (split a float32 value), so `x <= result`
    sends a row left exactly when XGBoost does."""
    t = np.float32(split)
    below = np.nextafter(t, np.float32(-np.inf))
    mid = (float(below) + float(t)) / 2.0  # exact in double: float32 values have 24-bit mantissas
    return mid if np.float32(mid) == below else float(np.nextafter(mid, -np.inf))


def _tree_text(index: int, tree: dict[str, Any], extra: float = 0.0) -> str:
    """One XGBoost tree (JSON model) as a LightGBM model-file tree block; `extra` is added to every leaf."""
    left, right = tree["left_children"], tree["right_children"]
    values, features, default_left = tree["split_conditions"], tree["split_indices"], tree["default_left"]
    internal = [i for i in range(len(left)) if left[i] != -1]
    leaves = [i for i in range(len(left)) if left[i] == -1]
    # the root is node 0 in both formats; other internal nodes and leaves are renumbered in order
    internal_id = {node: k for k, node in enumerate(internal)}
    leaf_id = {node: k for k, node in enumerate(leaves)}

    def child(node: int) -> int:
        return internal_id[node] if node in internal_id else -(leaf_id[node] + 1)

    leaf_values = [repr(float(np.float32(values[i])) + extra) for i in leaves]
    if not internal:
        return f"Tree={index}\nnum_leaves=1\nnum_cat=0\nleaf_value={leaf_values[0]}\nshrinkage=1\n"
    if any(tree.get("split_type", [0])[i] for i in internal):
        raise ValueError("categorical XGBoost splits are not supported")
    return "\n".join([
        f"Tree={index}",
        f"num_leaves={len(leaves)}",
        "num_cat=0",
        "split_feature=" + " ".join(str(features[i]) for i in internal),
        "threshold=" + " ".join(repr(_left_threshold(values[i])) for i in internal),
        "decision_type=" + " ".join(str(_MISSING_NAN | (_DEFAULT_LEFT if default_left[i] else 0)) for i in internal),
        "left_child=" + " ".join(str(child(left[i])) for i in internal),
        "right_child=" + " ".join(str(child(right[i])) for i in internal),
        "leaf_value=" + " ".join(leaf_values),
        "shrinkage=1",
        "",
    ])


def xgboost_text(estimator: Any) -> str | None:
    """A LightGBM model file that predicts what a fitted binary XGBClassifier (gbtree,
    binary:logistic, no categorical splits) predicts (None: not such a model)."""
    if getattr(estimator, "n_classes_", 2) != 2 or not hasattr(estimator, "get_booster"):
        return None
    booster = estimator.get_booster()
    config = json.loads(booster.save_config())["learner"]
    model = json.loads(bytes(booster.save_raw("json")))["learner"]
    if config["objective"]["name"] != "binary:logistic" or model["gradient_booster"]["name"] != "gbtree":
        return None
    trees = model["gradient_booster"]["model"]["trees"]
    begin, end = estimator._get_iteration_range(None)
    trees = trees[begin:end or None]
    base = float(np.float32(config["learner_model_param"]["base_score"]))
    margin = float(np.float32(math.log(base / (1.0 - base))))
    features = int(config["learner_model_param"]["num_feature"])
    header = "\n".join([
        "tree", "version=v4", "num_class=1", "num_tree_per_iteration=1", "label_index=0",
        f"max_feature_idx={features - 1}", "objective=binary sigmoid:1",
        "feature_names=" + " ".join(f"f{i}" for i in range(features)),
        "feature_infos=" + " ".join("[-inf:inf]" for _ in range(features)),
    ])
    blocks = [_tree_text(i, tree, extra=margin if i == 0 else 0.0) + "\n" for i, tree in enumerate(trees)]
    sizes = "tree_sizes=" + " ".join(str(len(block.encode())) for block in blocks)
    return f"{header}\n{sizes}\n\n" + "".join(blocks) + "end of trees\n\npandas_categorical:null\n"


class Compilation:
    """One model file's machine code in `cache_dir`, keyed by the file's hash: already there, being
    compiled by a child process (started here or by another process), or not yet asked for."""

    def __init__(self, text: str, cache_dir: Path) -> None:
        self.digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir = cache_dir
        self.model_file = cache_dir / f"{self.digest}.txt"
        self.binary = cache_dir / f"{self.digest}.so"
        self.quick_binary = cache_dir / f"{self.digest}{QUICK}.so"
        if not self.model_file.exists():
            part = cache_dir / f"{self.digest}.{os.getpid()}.txt.part"
            part.write_text(text)
            part.replace(self.model_file)

    def ready(self) -> bool:
        """Machine code of either kind is cached."""
        return self.binary.exists() or self.quick_binary.exists()

    def linked(self) -> bool:
        """The optimised machine code is cached as a shared library (loadable by ctypes alone)."""
        return self.binary.with_suffix(LIBRARY).exists()

    def linked_any(self) -> bool:
        """Machine code of either kind is cached as a shared library."""
        return self.linked() or self.quick_binary.with_suffix(LIBRARY).exists()

    def load(self, threads: int | None = None) -> ProbaFn:
        """P("yes") from the cached machine code (the optimised kind when there), on `threads` threads
        (default every core): the shared library linked from it when there is one (loaded by ctypes,
        without LLVM), else the object code loaded by lleaves."""
        binary = self.binary if self.binary.exists() else self.quick_binary
        os.utime(binary)  # in use: kept by prune
        threads = threads or os.cpu_count() or 1
        if (library := binary.with_suffix(LIBRARY)).exists():
            return _shared_library(library, _features(self.model_file), threads)
        import lleaves

        model = lleaves.Model(model_file=str(self.model_file))
        model.compile(cache=str(binary))  # loads the cached machine code
        return lambda x: model.predict(x, n_jobs=threads)


def _features(model_file: Path) -> int:
    """The number of features a LightGBM model file reads (its header's max_feature_idx + 1)."""
    with open(model_file) as fh:
        for line in fh:
            if line.startswith("max_feature_idx="):
                return int(line.split("=", 1)[1]) + 1
            if line.startswith("Tree="):
                break
    raise ValueError(f"{model_file.name} has no max_feature_idx")


def _shared_library(library: Path, features: int, threads: int) -> ProbaFn:
    """The compiled forest's entry point (lleaves' `forest_root(data, out, start, end)`, which releases
    the GIL through ctypes), called on `threads` slices of the rows as lleaves does."""
    import ctypes
    import threading
    from concurrent.futures import ThreadPoolExecutor

    double_p = ctypes.POINTER(ctypes.c_double)
    root = ctypes.CDLL(str(library)).forest_root
    root.argtypes = [double_p, double_p, ctypes.c_int32, ctypes.c_int32]
    root.restype = None

    row_in = np.zeros(features, dtype=np.float64)  # one row (a serving request): buffers and pointers made once
    row_out = np.zeros(1, dtype=np.float64)
    row_src, row_dst = row_in.ctypes.data_as(double_p), row_out.ctypes.data_as(double_p)
    row_lock = threading.Lock()  # ctypes releases the GIL during the call: one caller at a time in the buffers

    def proba(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != features:  # the machine code reads `features` doubles a row, unchecked
            raise ValueError(f"expected rows of {features} features, got shape {x.shape}")
        if len(x) == 1 and threads == 1:
            with row_lock:
                row_in[:] = x[0]
                root(row_src, row_dst, 0, 1)
                return row_out.copy()
        if len(x) >= 2**31 - 1:
            raise ValueError("too many rows for one call")
        data = np.ascontiguousarray(x, dtype=np.float64)
        out = np.zeros(len(data), dtype=np.float64)
        src, dst = data.ctypes.data_as(double_p), out.ctypes.data_as(double_p)
        step = max(1, -(-len(data) // threads))
        if threads == 1 or len(data) <= step:
            root(src, dst, 0, len(data))
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda start: root(src, dst, start, min(start + step, len(data))), range(0, len(data), step)))
        return out

    return proba


def start_compiling(compilations: list[Compilation], *, quick: bool = False, low_priority: bool = False
                    ) -> subprocess.Popen[bytes] | None:
    """Compile the missing binaries in a detached child (members in parallel, each in a process of its
    own), largest model first; it outlives this process, so a run that ends first still leaves them
    cached. `quick`: first without inlining (LLVM about 2.6x faster, trees about 1.5x slower: the kind
    that pays for itself within one large run), then the optimised kind, at low priority, for later runs.
    `low_priority`: all of it at nice 19 (at registration, and beside a batch run scoring with the libraries).
    None: nothing to compile."""
    missing = sorted((c for c in compilations if not c.binary.exists()), key=lambda c: -c.model_file.stat().st_size)
    if not missing:
        return None
    log.info("compiling %d model file(s) to native code in the background (cached in %s)", len(missing),
             missing[0].cache_dir)
    command = [sys.executable, "-m", "shared.serving.native_trees", "--jobs", str(_jobs()),
               *(["--nice"] if low_priority else []), *(["--quick"] if quick else []), *(str(c.model_file) for c in missing)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=child_env())


def wait_usable(compilations: list[Compilation], compiler: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait until every compilation has machine code of either kind (the quick kind comes first), or the
    compiler ended, or `timeout_s` passed; True: all usable. The compiler goes on (the optimised kind)."""
    deadline = time.monotonic() + timeout_s
    while not all(c.ready() for c in compilations):
        if compiler.poll() is not None or time.monotonic() >= deadline:
            return all(c.ready() for c in compilations)
        time.sleep(0.1)
    return True


def compile_text(text: str, cache_dir: Path) -> ProbaFn:
    """P("yes") from a LightGBM model file, compiled to native code on every core. The machine
    code is cached in `cache_dir` by the file's hash; a missing one is compiled in a child process,
    so LLVM's memory (about 230 MB for 500 XGBoost trees) and any crash stay out of this one."""
    compilation = Compilation(text, cache_dir)
    if not compilation.ready():
        log.info("compiling %s to native code (cached in %s)", compilation.model_file.name, cache_dir)
        done = subprocess.run([sys.executable, "-m", "shared.serving.native_trees", str(compilation.model_file)],
                              capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False, env=child_env())
        if done.returncode != 0 or not compilation.ready():
            raise RuntimeError(f"compiling {compilation.model_file.name} failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[-500:]}")
    return compilation.load()


def _jobs() -> int:
    """Compilers at once: one a core, at most two (each may hold about 230 MB of LLVM state)."""
    return max(1, min(2, os.cpu_count() or 1))


def prune(folder: Path, days: float = CACHE_DAYS) -> list[str]:
    """Remove compiled models (and their model files) not used for `days`; returns their hashes."""
    cutoff = time.time() - days * 86400
    gone = []
    for binary in folder.glob("*.so"):
        with contextlib.suppress(FileNotFoundError):
            if binary.stat().st_mtime < cutoff:
                binary.unlink()
                binary.with_suffix(LIBRARY).unlink(missing_ok=True)
                digest = binary.stem.removesuffix(QUICK)
                if not any(folder.glob(f"{digest}*.so")):
                    for leftover in [folder / f"{digest}.txt", *folder.glob(f"{digest}*.lock")]:
                        leftover.unlink(missing_ok=True)
                gone.append(binary.stem)
    return gone


def _compile_one(model_file: Path, quick: bool = False) -> None:
    """Compile one model file next to it, under a lock so two processes never compile the same file;
    the binary appears whole (renamed from a part file), and stale binaries are pruned."""
    import fcntl

    kind = QUICK if quick else ""
    binary = model_file.with_name(f"{model_file.stem}{kind}.so")
    with open(model_file.with_name(f"{model_file.stem}{kind}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process compiling it: wait, then find it done
        if binary.exists() or (quick and model_file.with_suffix(".so").exists()):
            return
        part = model_file.with_name(f"{model_file.stem}{kind}.{os.getpid()}.so.part")
        try:
            command = [sys.executable, "-m", "shared.serving.native_trees", "--compile", str(model_file), str(part)]
            done = subprocess.run(command + (["--quick"] if quick else []),
                                  capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False)
            if done.returncode != 0 or not part.exists():
                raise RuntimeError(f"compiling {model_file.name} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
            _link(part)
            if part.with_suffix(LIBRARY).exists():
                part.with_suffix(LIBRARY).replace(binary.with_suffix(LIBRARY))
            part.replace(binary)  # appears whole, after its library: a concurrent reader never loads half a file
        finally:
            part.unlink(missing_ok=True)
            part.with_suffix(LIBRARY).unlink(missing_ok=True)
    prune(model_file.parent)


def _link(obj: Path) -> None:
    """Link the object code into a shared library beside it (OBJ -> OBJ.lib), when a linker is installed:
    loading that takes ctypes only, where the object code needs LLVM (about a second of CPU to import)."""
    linker = shutil.which("ld")
    if linker is None:
        return
    done = subprocess.run([linker, "-shared", "-o", str(obj.with_suffix(LIBRARY)), str(obj), "-lm"],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        obj.with_suffix(LIBRARY).unlink(missing_ok=True)
        log.warning("could not link %s (%s); lleaves will load it", obj.name, done.stderr.strip()[-300:])


def _main(argv: list[str]) -> None:
    """Child processes: `--compile FILE OUT [--quick]` runs LLVM (a process of its own, so its memory
    goes with it); `[--jobs N] [--quick] FILE...` compiles each file under its lock, N at a time
    (with --quick: each quick kind first, below the caller's priority, then the optimised kinds lower still)."""
    if argv[0] == "--compile":
        import lleaves

        lleaves.Model(model_file=argv[1]).compile(cache=argv[2], finline="--quick" not in argv[3:])
        return
    jobs = 1
    if argv[0] == "--jobs":
        jobs, argv = int(argv[1]), argv[2:]
    if argv[0] == "--nice":
        # the lowest priority: only what the machine leaves (a cold batch run scoring with the libraries measured
        # 1.4x slower beside compilers at nice 5; a training or a host's other work comes first too)
        os.nice(19)
        argv = argv[1:]
    quick = argv[0] == "--quick"
    files = [Path(f) for f in argv[1:]] if quick else [Path(f) for f in argv]
    from concurrent.futures import ThreadPoolExecutor

    failed: list[str] = []
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        if quick:
            failed += [str(f) for f, error in zip(files, pool.map(lambda f: _try_compile(f, True), files), strict=True) if error]
        failed += [str(f) for f, error in zip(files, pool.map(_try_compile, files), strict=True) if error]
    if failed:
        sys.exit(f"failed to compile {', '.join(failed)}")


def _try_compile(model_file: Path, quick: bool = False) -> str | None:
    try:
        _compile_one(model_file, quick)
    except Exception as exc:  # one member's failure must not stop the others
        print(exc, file=sys.stderr)
        return str(exc)
    return None


if __name__ == "__main__":
    _main(sys.argv[1:])
