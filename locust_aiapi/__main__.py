"""``locust-aiapi`` and ``python -m locust_aiapi``: the ``locust`` command, with our options known up front.

Locust answers ``--help`` before it imports the locustfile (``parse_locustfile_option`` in
``locust/argument_parser.py`` builds the full parser and exits), so the ``--ai-*`` options that the
locustfile's ``import locust_aiapi`` would register are missing from ``locust -f FILE --help``.
Importing the plugin first registers them on Locust's global events; everything else is Locust's own
``main()``, unchanged (same arguments, same exit codes).
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from locust.main import main as locust_main

    import locust_aiapi  # noqa: F401  (registers the --ai-* options and listeners)

    locust_main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
