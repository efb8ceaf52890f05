"""`python -m tritonstack` runs the CLI."""

from tritonstack.cli import main

main()
