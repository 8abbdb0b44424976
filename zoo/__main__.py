"""`python -m zoo <command>`: the `zoo` command line (zoo.cli) without the
console script."""

from zoo.cli import main

main()
