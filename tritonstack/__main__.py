"""`python -m tritonstack` runs the CLI."""

from tritonstack.entry import main

main()
