"""The job as a Quix Streams application (``bench/quix_app.py``), driven from the main environment.

Quix Streams pins confluent-kafka below the project's, so it lives in a virtualenv of its own
and runs as a child process. The model goes to it as plain numbers in a JSON file, so that
environment needs neither scikit-learn nor pandas. ``run`` keeps the contract of
``hand_written_loop`` in ``bench/throughput.py``: (first commit time, last commit time, records
in the first commit).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# fastavro comes with the ``avro`` extra; orjson is already a dependency of quixstreams.
REQUIREMENT = "quixstreams[avro]==3.28.1"
SUFFIXES = ("-quix-features", "-quix-scores", "-quix-alerts")
APP = Path(__file__).resolve().with_name("quix_app.py")
TIMEOUT_S = 900
_STAMP = "bench-requirement.txt"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_env(root: Path) -> Path:
    """The Quix virtualenv's python, at ``root/.bench-venvs/quix``; installs it on first use.

    A stamp file records the installed requirement, so later runs skip pip entirely and a
    changed requirement rebuilds the environment from scratch.
    """
    venvs = root / ".bench-venvs"
    venv = venvs / "quix"
    python = venv / "bin" / "python"
    stamp = venv / _STAMP
    if python.exists() and stamp.exists() and stamp.read_text().strip() == REQUIREMENT:
        return python
    venvs.mkdir(parents=True, exist_ok=True)  # ignored by git (.gitignore)
    base = shutil.which("python3") or sys.executable
    log(f"quix: creating {venv} with {base} ...")
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    log(f"quix: pip install {REQUIREMENT} ...")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # stdout stays clean for the benchmark's closing JSON line; pip's errors go to stderr
    subprocess.run([*pip, REQUIREMENT], check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(REQUIREMENT + "\n")
    log("quix: environment ready")
    return python


def model_params(model: Any, threshold: float) -> dict[str, Any]:
    """The fitted StandardScaler + LogisticRegression as plain numbers, the threshold, and the
    project's vocabulary, which the Quix virtualenv cannot import.

    ``features`` is the column order the model was fitted on (its own record of it, else the
    project's ``FEATURE_COLUMNS``), which the application checks against its own feature order
    before scoring anything.
    """
    from payment_fraud import features, velocity
    from payment_fraud.pipelines.scoring import nodes

    scaler, regression = model[0], model[-1]
    if list(regression.classes_) != [False, True]:
        raise ValueError(f"expected a binary model over [False, True], got {regression.classes_}")
    # Training fits the bare matrix of build_features, whose columns are FEATURE_COLUMNS.
    names = getattr(model, "feature_names_in_", features.FEATURE_COLUMNS)
    return {
        "features": [str(name) for name in names],
        "mean": [float(v) for v in scaler.mean_],
        "scale": [float(v) for v in scaler.scale_],
        "coef": [float(v) for v in regression.coef_[0]],
        "intercept": float(regression.intercept_[0]),
        "threshold": float(threshold),
        "vocabulary": {
            "merchant_categories": list(features.MERCHANT_CATEGORIES),
            "risky_categories": list(features.RISKY_CATEGORIES),
            "country_currency": dict(features.COUNTRY_CURRENCY),
            "night_end_hour": features.NIGHT_END_HOUR,
            "high_amount": features.HIGH_AMOUNT,
            "ms_per_hour": features.MS_PER_HOUR,
            "ms_per_day": velocity.MS_PER_DAY,
            "no_previous_s": features._NO_PREVIOUS_S,
            "burst_count_1h": nodes.BURST_COUNT_1H,
            "reasons": [list(pair) for pair in nodes._REASONS],
            "no_flag_reason": nodes._NO_FLAGGED_REASON,
            "feature_fields": list(velocity.PAYMENT_FEATURE_COLUMNS),
            "score_fields": list(nodes.SCORE_COLUMNS),
            "alert_fields": list(nodes.ALERT_COLUMNS),
        },
    }


def write_params(path: Path, model: Any, threshold: float) -> Path:
    """Write ``model_params`` as JSON for ``quix_app.py --params``; returns ``path``."""
    path.write_text(json.dumps(model_params(model, threshold), indent=1))
    return path


def changelog_topic(group: str, topic: str) -> str:
    """The changelog of the application's state store, as Quix names it
    (``TopicManager.changelog_topic``: ``changelog__{group}--{input topic}--{store}``)."""
    return f"changelog__{group}--{topic}--default"


def run(
    python: Path,
    *,
    bootstrap: str,
    topic: str,
    fmt: str,
    total: int,
    params_path: Path,
    schema_path: Path,
    create_topic: Callable[[str], None],
    commit_every: int = 1000,
) -> tuple[float, float, int]:
    """Run the Quix application over ``total`` records of ``topic``.

    Returns (time its ``commit_every``-th record was processed, time its final commit
    finished, ``commit_every``), wall-clock seconds. Outputs go to ``topic`` + ``SUFFIXES``,
    which the caller creates beforehand; ``create_topic`` makes the state's changelog with the
    input's partition count (Quix would, but the development broker cannot create topics).
    """
    group = f"bench-quix-{uuid.uuid4().hex[:8]}"
    create_topic(changelog_topic(group, topic))
    command = [
        str(python),
        str(APP),
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--format",
        fmt,
        "--schema",
        str(schema_path),
        "--params",
        str(params_path),
        "--total",
        str(total),
        "--group",
        group,
        "--commit-every",
        str(commit_every),
    ]
    # The main environment's PYTHONPATH (its src/) means nothing to the Quix virtualenv.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    with tempfile.TemporaryDirectory(prefix="bench-quix-") as tmp:
        log_path = Path(tmp) / "quix_app.log"
        with log_path.open("w") as stderr:
            try:
                done = subprocess.run(
                    command,
                    cwd=tmp,  # Quix may create its state directory in the working directory
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                    timeout=TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                log(log_path.read_text())
                raise SystemExit(f"quix_app.py did not finish within {TIMEOUT_S} s") from None
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            log(log_path.read_text())
            raise SystemExit(f"quix_app.py failed (exit {done.returncode})")
    result = json.loads(lines[-1])
    if result["processed"] < total:
        raise SystemExit(f"quix_app.py processed {result['processed']} of {total} records")
    return float(result["first"]), float(result["last"]), int(result["first_batch"])
