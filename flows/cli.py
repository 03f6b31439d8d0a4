"""The `qa-pipeline` command: the library's CLI (qa_pipeline/cli.py) with `run` and `demo` going through the
`process_calls` flow in this process. Prefect is imported only when a run needs it, so `reviews import` or
`report weekly` start fast. `serve`, `users` and `db` are the review app's commands (`webapp/cli.py`); `forget`
(erasure: `webapp/erasure.py`) and `coach` (coaching packs: `webapp/packs.py`) call the library and then the
review database."""

from __future__ import annotations

import importlib
import sys


def _process_calls_module():
    return importlib.import_module("flows.process_calls")


WEB_COMMANDS = ("serve", "users", "db")  # the review app's commands (webapp/cli.py)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in WEB_COMMANDS:
        from webapp.cli import main as web_main

        return web_main(argv)
    if argv and argv[0] == "forget":  # the library's erasure, then the review database's (webapp/erasure.py)
        from webapp.erasure import main as forget_main

        return forget_main(argv[1:])
    if argv and argv[0] == "coach":  # coaching packs, with the trainers' marks when a database is given
        from webapp.packs import main as coach_main

        return coach_main(argv[1:])
    from qa_pipeline.cli import main as library_main

    return library_main(argv, orchestrator=_process_calls_module)


if __name__ == "__main__":
    sys.exit(main())
