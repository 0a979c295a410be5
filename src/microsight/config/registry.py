"""The method registry: one explicit declaration per method, discovered lazily.

Every method declares what it is in one :class:`MethodSpec`: its config
class (torch-free), its module factory, how it reads training data, how it
predicts and evaluates, whether it needs a target and what it outputs. The
heavy parts are named by import path (``"package.module:Class.attribute"``)
and imported only when a model is built, so listing methods, printing or
validating a configuration never starts PyTorch.

Built-in methods live in ``microsight.methods.<name>`` and expose ``SPEC``;
other packages add methods through the entry-point group
``microsight.methods`` (each entry point names a ``MethodSpec`` or a function
returning one), the way napari discovers its plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import pkgutil
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from microsight.config.base import MethodConfig
from microsight.errors import MicrosightError

ENTRY_POINT_GROUP = "microsight.methods"

#: What a method's prediction can hold; GUIs pick layer types from it.
OUTPUT_KINDS = frozenset({
    "image",          # an image on the input's grid (or output_scale times finer)
    "uncertainty",    # a per-pixel uncertainty map next to the image
    "labels",         # an instance or class label image
    "probabilities",  # per-class or object probability maps
    "objects",        # a table of objects (CSV) and shapes (GeoJSON)
    "points",         # a table of points with scores and classes
    "classes",        # one class (and probabilities) per image or object
    "embedding",      # feature vectors, clusters and a 2D map
    "localizations",  # a single-molecule localization table
})

#: The engine's defaults, used when a method declares no predictor / evaluator of its own.
TILED_PREDICTOR = "microsight.engine.inference:predict_image"
SHARED_EVALUATOR = "microsight.engine.evaluate:evaluate_model"

#: Parameters each part must accept (checked when the part is first loaded).
PART_PARAMETERS = {
    "training_data": ("config", "input_path", "target_path", "axes"),
    "predictor": ("model", "image", "out", "settings", "progress"),
    "evaluator": ("model", "input_path", "target_path", "axes", "report", "settings"),
}
#: Methods of the module class every method must provide itself.
MODULE_PARTS = ("build_network", "loss")


def _check_reference(ref: str, what: str, name: str) -> None:
    """A reference must look like ``package.module:attribute[.attribute]`` and exist."""
    module, sep, attribute = ref.partition(":")
    if not sep or not module or not attribute:
        raise MicrosightError(f"method {name!r}: {what} must be 'package.module:attribute', "
                              f"got {ref!r}")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise MicrosightError(f"method {name!r}: {what} {ref!r} names a module that does not "
                              "exist")


def _provided(cls: type, name: str) -> bool:
    """Whether ``cls`` has a concrete (not abstract) method ``name``."""
    method = getattr(cls, name, None)
    return callable(method) and not getattr(method, "__isabstractmethod__", False)


def resolve(ref: str) -> Any:
    """Import ``package.module:attribute[.attribute]`` and return the attribute."""
    module, _, attribute = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class MethodSpec:
    """What a method is, declared once.

    Parameters
    ----------
    name : str
        Method name in configs and on the command line (e.g. ``"care"``).
    summary : str
        One line for ``microsight methods``.
    family : str
        restoration, segmentation, detection, classification, ...
    config_class : type
        Its pydantic config (a ``MethodConfig`` subclass with
        ``method: Literal[name]``); imports no torch.
    module : str
        ``"package.module:Class"``: the LightningModule built for a model.
    training_data : str
        ``(config, input_path, target_path, axes) -> (TrainingSet, normalization)``;
        default the module class's ``prepare_training``. A reference starting
        with ``.`` (here and for ``predictor`` and ``evaluator``) names an
        attribute of the module class, e.g. ``".predict_image"``.
    needs_target : bool or None
        True: training needs ``--target``; False: it takes none; None: optional.
    outputs : tuple of str
        What a prediction holds (see :data:`OUTPUT_KINDS`), the first one the
        main result.
    metrics : tuple of str
        Test metrics its evaluation reports.
    predictor : str
        ``(model, image, out, *, settings, progress) -> result``; default the
        engine's tiled image prediction.
    evaluator : str
        ``(model, input_path, target_path, *, axes, report, settings) ->
        Evaluation``; default the engine's shared evaluation loop.
    ensembles : bool
        Its predictor averages several models or the 8 flips/rotations of the
        image (``predict m1 m2 ...``, ``--tta``).
    uncertainty_maps : bool
        Its predictor writes per-pixel uncertainty maps (``--uncertainty``).
    exports : bool
        Its network maps images to images (exportable as TorchScript, ONNX or
        a BioImage Model Zoo package).
    network_output : str
        What the exported network's output channels hold, for the package's card.
    citation : str
        The paper the method follows.
    """

    name: str
    summary: str
    family: str
    config_class: type
    module: str
    needs_target: bool | None
    outputs: tuple[str, ...]
    training_data: str = ""
    metrics: tuple[str, ...] = ()
    predictor: str = TILED_PREDICTOR
    evaluator: str = SHARED_EVALUATOR
    ensembles: bool = False
    uncertainty_maps: bool = False
    exports: bool = False
    network_output: str = ""
    citation: str = ""
    source: str = field(default="microsight", compare=False)

    def __post_init__(self) -> None:
        if not self.training_data:
            object.__setattr__(self, "training_data", ".prepare_training")
        # ".attribute" names an attribute of the module class (e.g. ".predict_image").
        for what in ("training_data", "predictor", "evaluator"):
            ref = getattr(self, what)
            if ref.startswith("."):
                object.__setattr__(self, what, f"{self.module}{ref}")

    def check(self) -> None:
        """Check the declaration without importing its heavy parts.

        Raises
        ------
        MicrosightError
            Naming the method and what is missing or wrong.
        """
        where = f"method {self.name!r}"
        if not self.name or not self.summary or not self.family:
            raise MicrosightError(f"{where}: name, summary and family must not be empty")
        if not (isinstance(self.config_class, type) and
                issubclass(self.config_class, MethodConfig)):
            raise MicrosightError(f"{where}: config_class must subclass MethodConfig")
        default = self.config_class.model_fields["method"].default
        if default != self.name:
            raise MicrosightError(f"{where}: its config's 'method' field defaults to "
                                  f"{default!r}; declare method: Literal[{self.name!r}]")
        if not self.metrics:
            raise MicrosightError(f"{where}: declare the test metrics its evaluation reports "
                                  "(metrics=...; the first one decides the verdict)")
        if self.needs_target not in (True, False, None):
            raise MicrosightError(f"{where}: needs_target must be True, False or None")
        unknown = set(self.outputs) - OUTPUT_KINDS
        if not self.outputs or unknown:
            raise MicrosightError(f"{where}: outputs must be among {sorted(OUTPUT_KINDS)}, "
                                  f"got {list(self.outputs)}")
        if self.exports and not self.network_output:
            raise MicrosightError(f"{where}: an exportable method says what its network "
                                  "outputs (network_output)")
        for what in ("module", "training_data", "predictor", "evaluator"):
            _check_reference(getattr(self, what), what, self.name)

    @property
    def tiled(self) -> bool:
        """Whether it predicts through the engine's tiled image prediction."""
        return self.predictor == TILED_PREDICTOR

    @cached_property
    def module_class(self) -> type:
        """The LightningModule class (imports torch); checked on first use."""
        cls = resolve(self.module)
        if not isinstance(cls, type):
            raise MicrosightError(f"method {self.name!r}: module {self.module!r} is not a class")
        missing = [p for p in MODULE_PARTS if not _provided(cls, p)]
        if missing:
            raise MicrosightError(f"method {self.name!r}: its module {cls.__name__} does not "
                                  f"implement {', '.join(missing)}")
        cls.method_name = self.name
        return cls

    def load(self) -> MethodSpec:
        """Import and check every part (module class, training data, predictor, evaluator).

        Returns
        -------
        MethodSpec
            ``self``, once everything it names exists and has the right shape.
        """
        _ = self.module_class
        for what in PART_PARAMETERS:
            self.part(what)
        return self

    def part(self, what: str) -> Any:
        """Load ``training_data``, ``predictor`` or ``evaluator`` and check its signature."""
        ref = getattr(self, what)
        try:
            obj = resolve(ref)
        except (ImportError, AttributeError) as err:
            raise MicrosightError(f"method {self.name!r}: its {what} {ref!r} cannot be "
                                  f"loaded ({err})") from None
        if not callable(obj):
            raise MicrosightError(f"method {self.name!r}: its {what} {ref!r} is not callable")
        params = inspect.signature(obj).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        positional = [p for p in params.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        wanted = PART_PARAMETERS[what]
        # The first parameters may be named freely (``input`` or ``input_path``).
        n_free = 3 if what != "predictor" else 2
        missing = [w for w in wanted[n_free:] if w not in params and not takes_all]
        if len(positional) < n_free or missing:
            raise MicrosightError(f"method {self.name!r}: its {what} {ref!r} must accept "
                                  f"({', '.join(wanted)})")
        return obj


_REGISTRY: dict[str, MethodSpec] = {}
_BROKEN: dict[str, str] = {}
_DISCOVERED = False


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry after checking its declaration.

    Parameters
    ----------
    spec : MethodSpec
        The method's declaration.

    Returns
    -------
    MethodSpec
        ``spec``, so a package may write ``SPEC = register_method(MethodSpec(...))``.

    Raises
    ------
    MicrosightError
        When the declaration is incomplete or the name is taken by another method.
    """
    if not isinstance(spec, MethodSpec):
        raise MicrosightError(f"register_method takes a MethodSpec, got {type(spec).__name__}")
    spec.check()
    known = _REGISTRY.get(spec.name)
    if known is not None and known != spec:
        raise MicrosightError(f"method {spec.name!r} is registered twice ({known.source} and "
                              f"{spec.source})")
    _REGISTRY[spec.name] = spec
    return spec


def lazy_attributes(package: str, names: tuple[str, ...]) -> Any:
    """A module ``__getattr__`` that imports ``names`` from ``package.module`` on first use.

    A method package declares its ``SPEC`` with nothing heavier than its config
    and still offers its module's public names::

        __getattr__ = lazy_attributes(__name__, ("CareModule",))
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            # Imported by name so that declaring the method stays light.
            return getattr(importlib.import_module(f"{package}.module"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def _warn_broken(key: str, err: Exception) -> None:
    _BROKEN[key] = f"{type(err).__name__}: {err}"
    warnings.warn(f"method {key!r} failed to load and is skipped ({_BROKEN[key]})",
                  RuntimeWarning, stacklevel=3)


def _discover_builtin() -> None:
    # Imported by name, not statically: the config layer must not depend on methods.
    pkg = importlib.import_module("microsight.methods")
    for info in pkgutil.iter_modules(pkg.__path__):
        try:
            module = importlib.import_module(f"microsight.methods.{info.name}")
            register_method(module.SPEC)
        except Exception as err:  # one broken method must not hide the others
            _warn_broken(info.name, err)


def _discover_plugins() -> None:
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = entry.load()
            spec = spec() if callable(spec) and not isinstance(spec, MethodSpec) else spec
            if isinstance(spec, MethodSpec):
                object.__setattr__(spec, "source", entry.value)
            register_method(spec)
        except Exception as err:
            _warn_broken(entry.name, err)


def _discover() -> None:
    """Register the built-in methods, then those of installed packages."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    _discover_builtin()
    _discover_plugins()


def available_methods() -> dict[str, MethodSpec]:
    """Return every registered method, by name."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str) -> MethodSpec:
    """Return the declaration of method ``name`` or raise a clear error."""
    methods = available_methods()
    if name not in methods:
        broken = _BROKEN.get(name) or _BROKEN.get(name.replace("-", "_"))
        if broken:
            raise MicrosightError(f"method {name!r} is installed but failed to load: {broken}")
        known = ", ".join(methods) or "none"
        raise MicrosightError(f"unknown method {name!r}; available methods: {known}")
    return methods[name]


def method_config_class(name: str) -> type:
    """Return the config class of method ``name``."""
    return get_method(name).config_class
