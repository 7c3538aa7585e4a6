"""``--app MODULE:ATTRIBUTE``: find the workflows (and plugins) a command works with.

The attribute may be a ``Workflow``, a ``kernel.workflows.Registry`` (or
any object with a ``workflows`` sequence), or a list or tuple mixing
workflows, registries and plugins (``kernel.define_plugin``); plugins
receive the events the worker publishes. The list may also hold one
``AIConfig`` (what ``ctx.ai`` calls), batch providers (what LLM batch
stages submit to) and one blob store (``adapters.blobs.FileBlobStore``: where
values over the inline limit live), which the kernel the command builds is given.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from attrs import frozen

from adapters.cli.errors import CliError
from adapters.runner import describe
from kernel.ai import AIConfig, BatchProvider
from kernel.plugins import Plugin
from kernel.ports import BlobStore
from kernel.workflows import Workflow

APP_ENV = "WFK_APP"


@frozen
class App:
    """What ``--app`` named: its workflows and plugins."""

    spec: str
    workflows: tuple[Workflow[Any, Any], ...]
    plugins: tuple[Plugin, ...] = ()
    ai: AIConfig | None = None
    batch_providers: tuple[BatchProvider, ...] = ()
    blobs: BlobStore | None = None

    def workflow_ids(self) -> list[str]:
        return list(dict.fromkeys(workflow.id for workflow in self.workflows))

    def served(self) -> str:
        """The workflows and versions a worker of this app serves, as its start line
        says them: ``pricing (versions 1, 2), report (version 1)``."""
        versions: dict[str, list[str]] = {}
        for workflow in self.workflows:
            versions.setdefault(workflow.id, []).append(workflow.version)
        return ", ".join(
            f"{workflow_id} (version{'s' if len(held) > 1 else ''} {', '.join(held)})"
            for workflow_id, held in versions.items()
        )


def app_spec(given: str | None) -> str:
    """``--app``, else ``$WFK_APP``.

    Raises:
        CliError: neither is set.
    """
    spec = given or os.environ.get(APP_ENV)
    if not spec:
        raise CliError(
            "this command needs the workflows: pass --app MODULE:ATTRIBUTE "
            f"(or set ${APP_ENV}), for example --app myproject.workflows:registry",
            exit_code=2,
        )
    return spec


def load_app(spec: str) -> App:
    """Import ``MODULE`` and read ``ATTRIBUTE`` (dotted paths allowed on both sides).

    The working directory is importable, as it is for ``python -m``.

    Raises:
        CliError: a malformed spec, a missing module or attribute, a module
            that fails to import, or an attribute that holds no workflow.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CliError(
            f"--app {spec!r}: expected MODULE:ATTRIBUTE, for example myproject.workflows:registry",
            exit_code=2,
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CliError(f"--app {spec!r}: no module named {missing!r}") from exc
        raise CliError(f"--app {spec!r}: importing {module_name} failed: {describe(exc)}") from exc
    except Exception as exc:  # the user's module may raise anything while importing
        raise CliError(f"--app {spec!r}: importing {module_name} failed: {describe(exc)}") from exc
    value: Any = module
    for name in attribute.split("."):
        if not hasattr(value, name):
            raise CliError(f"--app {spec!r}: module {module_name!r} has no attribute {attribute!r}")
        value = getattr(value, name)
    workflows: list[Workflow[Any, Any]] = []
    plugins: list[Plugin] = []
    extras: list[AIConfig | BatchProvider | BlobStore] = []
    _collect(spec, value, workflows, plugins, extras, top=True)
    if not workflows:
        raise CliError(f"--app {spec!r} holds no workflow")
    configs = [extra for extra in extras if isinstance(extra, AIConfig)]
    if len(configs) > 1:
        raise CliError(f"--app {spec!r} holds {len(configs)} AIConfig objects; give one")
    providers = tuple(extra for extra in extras if isinstance(extra, BatchProvider))
    blobs = [extra for extra in extras if _is_blob_store(extra)]
    if len(blobs) > 1:
        raise CliError(f"--app {spec!r} holds {len(blobs)} blob stores; give one")
    return App(
        spec,
        tuple(workflows),
        tuple(plugins),
        configs[0] if configs else None,
        providers,
        blobs[0] if blobs else None,
    )


def _is_blob_store(value: Any) -> TypeGuard[BlobStore]:
    """A :class:`~kernel.ports.BlobStore`: ``put``, ``get`` and ``delete`` methods (a
    mapping has ``get`` too, and is not one)."""
    if isinstance(value, Mapping | Workflow | Plugin | AIConfig | BatchProvider):
        return False
    return all(callable(getattr(value, name, None)) for name in ("put", "get", "delete"))


def _collect(
    spec: str,
    value: Any,
    workflows: list[Workflow[Any, Any]],
    plugins: list[Plugin],
    extras: list[AIConfig | BatchProvider | BlobStore],
    top: bool = False,
) -> None:
    if isinstance(value, Workflow):
        if all(workflow is not value for workflow in workflows):
            workflows.append(value)
    elif isinstance(value, Plugin):
        plugins.append(value)
    elif not top and (isinstance(value, (AIConfig, BatchProvider)) or _is_blob_store(value)):
        extras.append(value)
    elif hasattr(value, "workflows") and not isinstance(value, str | bytes):
        for workflow in value.workflows:
            _collect(spec, workflow, workflows, plugins, extras)
    elif top and isinstance(value, Iterable) and not isinstance(value, str | bytes):
        for item in value:
            _collect(spec, item, workflows, plugins, extras)
    else:
        raise CliError(
            f"--app {spec!r}: expected a Workflow, a Registry, or a list of workflows "
            f"(and plugins, an AIConfig, batch providers, a blob store), got {type(value).__name__}"
        )
