"""watcherd's commands, one module per family; `watcherd.cli` parses and builds, these act.

Each command is a function given what it needs (built by the composition root in
`watcherd.cli`) and returning its exit code.
"""
