"""The model that serving uses: loaded once, swapped when the registry's active pointer moves."""

from __future__ import annotations

import gc
import threading

from models.artifacts import LoadedModel, Registry
from triage.errors import ModelNotReadyError


class ModelHolder:
    """Holds the active ``LoadedModel``; ``current()`` reloads if another version was activated."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()

    def set(self, loaded: LoadedModel) -> None:
        with self._lock:
            self._loaded = loaded

    def current(self) -> LoadedModel:
        """The loaded model, switching to a newly activated version without a restart."""
        loaded = self._loaded
        if loaded is None:
            raise ModelNotReadyError("no model is loaded yet; the service is still starting")
        active = self.registry.active_version()
        if active and active != loaded.version:
            with self._lock:
                if self._loaded is not None and self._loaded.version != active:
                    self._loaded = self.registry.load_active()
                    gc.freeze()  # the new model's objects are long-lived too
                loaded = self._loaded
        assert loaded is not None
        return loaded

    @property
    def ready(self) -> bool:
        return self._loaded is not None
