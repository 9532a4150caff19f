"""A parsed template rewritten so that it runs within its bounds (part of `watcherd.templates`).

Jinja2 compiles loops, literals, `~`, slices and output to plain Python that no sandbox hook
sees; this routes each through a helper of the bounded environment (`BoundedSandbox` in
`watcherd.template_sandbox`): `bounded_loop` (each item a turn), `bounded_value` (a list, tuple or
dict literal within the size bound), `bounded_concat`, `bounded_slice` (no string sliced with a
step) and `spend_literal` (the template's own text counted as written each time it runs).
"""

from __future__ import annotations

from jinja2 import nodes
from jinja2.visitor import NodeTransformer

from watcherd.render import ZWSP


def bounded_tree(tree: nodes.Template) -> nodes.Template:
    """`tree`, rewritten in place to call the bounded environment's helpers."""
    rewritten: nodes.Template = _Bounded().visit(tree)
    return rewritten


class _Bounded(NodeTransformer):
    """Routes loops, literals, `~` and output through the environment's bounded helpers."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        iterable = node.iter
        assert isinstance(iterable, nodes.Expr)  # noqa: S101 - a loop's iterable is one
        node.iter = _helper("bounded_loop", iterable)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return _helper("bounded_concat", *node.nodes)

    def visit_List(self, node: nodes.List) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return _helper("bounded_value", node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return _helper("bounded_value", node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return node if node.ctx != "load" else _helper("bounded_value", node)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:  # noqa: N802
        # Jinja writes `a[1:2]` as Python's subscript, past `getitem`: route it through.
        self.generic_visit(node)
        if not isinstance(node.arg, nodes.Slice):
            return node
        bounds = (node.arg.start, node.arg.stop, node.arg.step)
        none = nodes.Const(None, lineno=node.lineno)
        sliced = node.node
        assert isinstance(sliced, nodes.Expr)  # noqa: S101 - a Getitem's node is an expression
        return _helper("bounded_slice", sliced, *(bound or none for bound in bounds))

    def visit_Output(self, node: nodes.Output) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        children = list(node.nodes)
        for index, child in enumerate(children):
            followed_by_text = index + 1 < len(children) and isinstance(
                children[index + 1], nodes.TemplateData
            )
            if not isinstance(child, nodes.TemplateData) or followed_by_text:
                continue
            # An `@` right before `{{` or `{%` (or the end): what follows may be feed text.
            if child.data.endswith("@"):
                child.data += ZWSP
        written = sum(len(c.data) for c in children if isinstance(c, nodes.TemplateData))
        # The template's own text counts each time it is written (a loop, a macro).
        spend = _helper("spend_literal", nodes.Const(written, lineno=node.lineno))
        node.nodes = [spend, *children] if written else children
        return node


def _helper(name: str, *args: nodes.Expr) -> nodes.Call:
    lineno = args[0].lineno if args else None
    helper = nodes.EnvironmentAttribute(name, lineno=lineno)
    return nodes.Call(helper, list(args), [], None, None, lineno=lineno)
