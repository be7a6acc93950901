"""Write the saved suites' results table into docs/hardening.md, or print it.

The suites save their rows in ``bench/results/``; the table is made from those files only.

    .venv/bin/python -m bench.results            # what `make bench` runs last
    .venv/bin/python -m bench.results --print
"""

from __future__ import annotations

import argparse

from bench.harness.results import HARDENING_PAGE, load_all, render, update_hardening_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the table, write nothing")
    if parser.parse_args().print:
        print(render(load_all()))
    else:
        update_hardening_page()
        print(f"updated {HARDENING_PAGE}")


if __name__ == "__main__":
    main()
