"""Only storage speaks to the database: beside the import-linter contracts (which see imports, not calls), no
module outside ``storage`` and the migrations calls a session's or connection's query methods."""

from __future__ import annotations

import ast
from pathlib import Path

import consentry

PACKAGE = Path(consentry.__file__).parent
SPEAKING_TO_THE_DATABASE = frozenset(
    {
        "execute",
        "scalar",
        "scalars",
        "get",
        "add",
        "add_all",
        "delete",
        "flush",
        "merge",
        "refresh",
        "begin_nested",
        "exec_driver_sql",
        "run_sync",
    }
)
HOLDERS = frozenset({"session", "transaction", "connection", "conn"})


def database_calls(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in ("storage", "migrations"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SPEAKING_TO_THE_DATABASE
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in HOLDERS
            ):
                found.append(f"{relative}:{node.lineno}: {node.func.value.id}.{node.func.attr}(…)")
    return found


def test_nothing_outside_storage_queries_a_session() -> None:
    assert database_calls(PACKAGE) == []


def test_the_check_sees_a_query_in_a_use_case(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "leaky.py").write_text("async def f(session):\n    await session.execute(1)\n")
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "port.py").write_text("async def f(session):\n    await session.execute(1)\n")
    assert database_calls(tmp_path) == ["services/leaky.py:2: session.execute(…)"]
