"""Airflow driver: `mlpipe compile --target airflow`, then `airflow dags test` in `.venvs/airflow`.

Set-up cost is paid once per test process:
- the SQLite AIRFLOW_HOME is a temporary folder whose database is a copy of a migrated template
  (`airflow db migrate` runs once per Airflow version and is kept in the test cache,
  `$MLPIPE_TEST_CACHE_DIR/airflow-db-<version>/`);
- every run points `AIRFLOW__CORE__DAGS_FOLDER` at the compile output, so Airflow parses only that
  DAG, and the example DAGs are off;
- `airflow dags test` itself runs in one long-lived Airflow interpreter (`DagsTestServer`): each run
  is the CLI's own `dags test` command (parsed by Airflow's CLI parser, `args.func(args)`), with
  the process's stdout / stderr redirected into that run's log. This saves importing Airflow and
  starting its in-process execution API for every run (~15-20 s each on 2 cores). Set
  `MLPIPE_AIRFLOW_DRIVER=cli` to start a fresh `airflow dags test` process per run instead.

`airflow dags test` runs the tasks without a scheduler or executor (pools are not enforced there),
prints every task's log, step stdout / stderr included, and fails when the DAG run failed.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import VENVS, Driver, RunOutcome, child_env, python_of, run_cmd

RUN_ID = re.compile(r"run_id=(\S+?)[,\s]")

# Runs in `.venvs/airflow`: one JSON request per stdin line {"argv", "env", "cwd", "log"};
# answers {"code": exit status} on the original stdout once the command is done.
SERVER = r"""
import json, os, sys, traceback
answer = os.fdopen(os.dup(1), "w")
from airflow.cli import cli_parser
import airflow.settings
parser = cli_parser.get_parser()
answer.write("READY\n")
answer.flush()
for line in sys.stdin:
    req = json.loads(line)
    os.environ.update(req["env"])
    airflow.settings.DAGS_FOLDER = req["env"]["AIRFLOW__CORE__DAGS_FOLDER"]
    os.chdir(req["cwd"])
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 0
    try:
        args = parser.parse_args(req["argv"])
        args.func(args)
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (log, *saved):
            os.close(fd)
    answer.write(json.dumps({"code": code}) + "\n")
    answer.flush()
"""


def airflow_version(venv: str = "airflow") -> str:
    site = next((VENVS / venv / "lib").glob("python*/site-packages"))
    dist = sorted(site.glob("apache_airflow-*.dist-info"))
    return dist[0].name.split("-")[1] if dist else "unknown"


def _cache_dir() -> Path:
    root = os.environ.get("MLPIPE_TEST_CACHE_DIR") or str(
        Path(__file__).resolve().parents[2] / ".mlpipe-test-cache"
    )
    return Path(root)


class DagsTestServer:
    """One Airflow interpreter that runs `airflow dags test ...` commands one after another."""

    def __init__(self, env: dict, log: Path, venv: str = "airflow"):
        with open(log, "w") as err:  # what it prints between commands (start-up warnings)
            self.proc = subprocess.Popen(
                [python_of(venv), "-u", "-c", SERVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )
        self._expect("READY", timeout=300)

    def _expect(self, what: str | None, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line or (what is not None and line.strip() != what):
            self.close()
            raise RuntimeError(f"the Airflow test interpreter did not answer ({what or 'result'})")
        return line

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, argv: list[str], env: dict, cwd: str, timeout: float) -> tuple[int, str]:
        with tempfile.NamedTemporaryFile(
            prefix="mlpipe-airflow-", suffix=".log", delete=False
        ) as fh:
            log = fh.name
        try:
            request = {"argv": argv, "env": env, "cwd": cwd, "log": log}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            code = json.loads(self._expect(None, timeout))["code"]
            return code, Path(log).read_text(encoding="utf-8", errors="replace")
        finally:
            os.unlink(log)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class AirflowDriver(Driver):
    name = "airflow"
    venv = "airflow"  # .venvs/<venv>: the Airflow the DAGs run on

    @property
    def airflow(self) -> str:
        return str(VENVS / self.venv / "bin" / "airflow")

    def __init__(self) -> None:
        self._home: Path | None = None
        self._server: DagsTestServer | None = None

    # ------------------------------------------------------------------------- environment
    @staticmethod
    def base_env(home: Path) -> dict:
        return {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }

    def _template_db(self) -> Path:
        """A migrated SQLite database for this Airflow version, made once and kept."""
        folder = _cache_dir() / f"airflow-db-{airflow_version(self.venv)}"
        db = folder / "airflow.db"
        if db.is_file():
            return db
        folder.mkdir(parents=True, exist_ok=True)
        import fcntl

        with open(folder / ".lock", "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            if not db.is_file():
                work = Path(tempfile.mkdtemp(prefix="mlpipe-airflow-migrate-"))
                try:
                    env = child_env(**self.base_env(work))
                    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(work / "dags")
                    proc = run_cmd([self.airflow, "db", "migrate"], env=env, timeout=600)
                    assert proc.returncode == 0, f"airflow db migrate failed:\n{proc.stderr}"
                    tmp = folder / f".airflow.db.{os.getpid()}"
                    shutil.copyfile(work / "airflow.db", tmp)
                    os.replace(tmp, db)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
        return db

    def home(self) -> Path:
        """This test process's AIRFLOW_HOME (created on first use, removed at exit)."""
        if self._home is None:
            home = Path(tempfile.mkdtemp(prefix="mlpipe-airflow-home-"))
            shutil.copyfile(self._template_db(), home / "airflow.db")
            atexit.register(shutil.rmtree, home, True)
            self._home = home
        return self._home

    def env(self, dags_folder: Path, **extra) -> dict:
        env = child_env(**self.base_env(self.home()))
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
        env.update(extra)
        return env

    def server(self) -> DagsTestServer:
        if self._server is None or not self._server.alive():
            home = self.home()
            log = home / "dags-test-server.log"
            self._server = DagsTestServer(self.env(home), log, self.venv)
            atexit.register(self._server.close)
        return self._server

    # ------------------------------------------------------------------------------- running
    @staticmethod
    def dag_file_option(dag: Path) -> list[str]:
        return ["-f", str(dag)]

    @staticmethod
    def dag_file(out: Path) -> Path:
        files = sorted(out.glob("*.py"))
        assert len(files) == 1, f"expected one DAG file in {out}, found {files}"
        return files[0]

    def test_dag(
        self, out: Path, conf: dict | None = None, timeout: int = 900, cli: bool | None = None
    ) -> tuple[int, str]:
        """`airflow dags test` of the one DAG in `out`: (exit status, everything it printed).

        `cli=True` starts the real `airflow` command; by default the long-lived interpreter
        runs it (unless MLPIPE_AIRFLOW_DRIVER=cli)."""
        dag = self.dag_file(out)
        argv = ["dags", "test", dag.stem, *self.dag_file_option(dag)]
        if conf:
            argv += ["--conf", json.dumps(conf)]
        if cli is None:
            cli = os.environ.get("MLPIPE_AIRFLOW_DRIVER") == "cli"
        env = self.env(out)
        if cli:
            proc = run_cmd([self.airflow, *argv], env=env, timeout=timeout, cwd=str(out))
            return proc.returncode, proc.stdout + proc.stderr
        server = self.server()
        try:
            return server.run(argv, env, str(out), timeout)
        except (RuntimeError, OSError) as exc:
            server.close()
            return 1, f"airflow dags test did not finish: {exc}"

    def run(self, pipeline, out, *, params=None, regenerate=False):
        self.compile(pipeline, Path(out))
        conf = dict(params or {})
        if regenerate:
            conf["regenerate_outputs"] = True
        code, log = self.test_dag(Path(out), conf)
        found = RUN_ID.findall(log)
        return RunOutcome(ok=code == 0, log=log, run_id=found[-1] if found else None)


DRIVER = AirflowDriver()
