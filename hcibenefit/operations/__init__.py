"""Operations: what a command does, wired from inventory, remoting, facts and checks.

Callable without typer (tests and other Python code use them directly); the CLI only parses,
calls one of these, renders and maps to an exit code.
"""
