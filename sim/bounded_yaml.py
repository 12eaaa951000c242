"""YAML read within bounds: a size limit on the text, and a limit on what its aliases expand to.

``yaml.safe_load`` shares an aliased node instead of copying it, so a few hundred bytes of nested aliases (a
"billion laughs" document) load quickly, but anything that walks the result (validation, copying, printing) walks
the expanded tree and runs out of memory. :func:`load_yaml` composes the document first, counts the nodes of the
tree its aliases stand for (without expanding it) and refuses one over :data:`MAX_NODES`.
"""

from __future__ import annotations

from typing import Any

import yaml

#: The largest YAML text read (bytes): configuration and scenario files are a few kilobytes.
MAX_BYTES = 1 << 20
#: The most nodes a document may stand for once its aliases are expanded (a scalar counts once per 64 characters).
MAX_NODES = 100_000


def load_yaml(text: str | bytes, *, source: str, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> Any:
    """The data of a YAML document, read with ``yaml.SafeLoader``.

    :raises ValueError: starting with ``source``, when the text is over ``max_bytes``, not valid YAML, or stands for
        more than ``max_nodes`` nodes once its aliases are expanded.
    """
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_bytes:
        raise ValueError(f"{source}: more than {max_bytes} bytes of YAML; a larger file is not read")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes = _expanded_size(node, {})
        if nodes > max_nodes:
            raise ValueError(f"{source}: the YAML's aliases expand to more than {max_nodes} nodes "
                             f"({nodes:.3g}); write the values out instead")
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not valid YAML ({_short(str(error))})") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for with every alias expanded (each shared node counted once per use)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # (a recursive alias counts once: the constructor builds it as a cycle)
    total = 1 + (len(node.value) // 64 if isinstance(node, yaml.ScalarNode) else 0)
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(key, sizes) + _expanded_size(value, sizes) for key, value in node.value)
    sizes[id(node)] = total
    return total


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
