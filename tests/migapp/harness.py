"""A throw-away Django project around ``tests.migapp``, driven by real ``manage.py`` processes."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smolqwery.warehouses.duckdb import DuckDBWarehouse

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS_MODULE = "migapp_migrations"


@dataclasses.dataclass
class Project:
    """One run directory: SQLite databases, DuckDB file and generated migrations of migapp."""

    run_dir: Path
    extractors: Sequence[str] = ("UserExtractor", "EmailExtractor")
    dataset: str = "smolqwery_mig"
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        pkg = self.migrations_dir
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").touch()

    @property
    def migrations_dir(self) -> Path:
        return self.run_dir / MIGRATIONS_MODULE

    def migration_files(self) -> list[Path]:
        return sorted(p for p in self.migrations_dir.glob("0*.py"))

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SQ_", "SMOLQWERY_", "GOOGLE_", "DJANGO_SETTINGS"))
        }
        env.update(
            PYTHONPATH=str(REPO),
            SQ_RUN_DIR=str(self.run_dir),
            SQ_EXTRACTORS=",".join(self.extractors),
            SQ_DATASET=self.dataset,
            DJANGO_SETTINGS_MODULE="tests.migapp.settings",
        )
        env.update(self.env)
        env.update(extra or {})
        return env

    def manage(
        self,
        *args: str,
        ok: bool = True,
        env: Mapping[str, str] | None = None,
        module: Sequence[str] = ("-m", "django"),
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m django <args>``; with ``ok`` a failure shows its output."""
        proc = subprocess.run(
            [sys.executable, *module, *args],
            cwd=self.run_dir,
            env=self.environ(env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if ok and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def make_migrations(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.manage("smolqwery_make_migrations", *args, ok=ok)

    def duckdb(self) -> DuckDBWarehouse:
        from smolqwery.warehouses.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(self.run_dir / "warehouse.duckdb", self.dataset, busy_timeout=10)
