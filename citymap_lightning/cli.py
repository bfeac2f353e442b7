"""``python -m citymap_lightning``: the LightningCLI around CityMap and DistanceDataModule."""

from __future__ import annotations

import contextlib
import difflib
import errno
import importlib
import inspect
import logging
import re
import signal
import sys
import threading
import warnings
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.progress import ProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from citymap_lightning import options, threads
from citymap_lightning.callbacks import MapRenderer
from citymap_lightning.checkpoints import check_checkpoint, find_last_checkpoint
from citymap_lightning.datamodule import DistanceDataModule
from citymap_lightning.errors import CitymapError, ConfigError
from citymap_lightning.model import CityMap
from citymap_lightning.option_manifest import MANIFEST
from citymap_lightning.options import EXIT_INPUT, check_choice, one_line, unknown_option
from citymap_lightning.paths import packaged_path
from citymap_lightning.problem import check_settings
from citymap_lightning.progress import EpochProgressBar, console_handler

DEFAULT_CONFIG = "default.yaml"
"""The packaged configuration every subcommand starts from; ``--config`` files override it."""

log = logging.getLogger("citymap_lightning")

QUIET_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    ".*Trying to infer the `batch_size`.*",
    ".*does not have many workers.*",
    ".*is smaller than the logging interval.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*`training_step` returns `None`.*",
    ".*configure_optimizers` will be overridden by.*",
    ".*The dirpath has changed from.*",
)


class Checkpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, saving on an exception only when the user stopped the fit.

    After a divergence or an error the coordinates are garbage: a ``last.ckpt`` of them would be
    what the next ``--ckpt_path last`` resumes from.
    """

    def on_exception(self, trainer: Trainer, pl_module: Any, exception: BaseException) -> None:
        """Save where the fit got, saying so in one plain line with the checkpoint's whole path.

        Lightning's own line names the exception with an empty message and a relative path
        (``An SIGTERMException was raised with message: , saved checkpoint to ./...``).
        """
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return
        lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
        own_line = _Without("was raised with message")
        lightning_log.addFilter(own_line)
        try:
            super().on_exception(trainer, pl_module, exception)
        finally:
            lightning_log.removeFilter(own_line)
        if trainer.is_global_zero and self.last_model_path:
            log.info(f"checkpoint of the interrupted fit: {Path(self.last_model_path).resolve()}")


class _Without(logging.Filter):
    """Drops the log records whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


class CityMapTrainer(Trainer):
    """Lightning's Trainer with one more entry point: :meth:`dims`, the CLI's ``dims`` subcommand."""

    def dims(self, model: CityMap, datamodule: DistanceDataModule, max_dim: int = 5, replicates: int = 5) -> list:
        """Fit flat maps of 1 to max_dim dimensions, beside random distances of the same pairs (a scree plot).

        Writes ``dims.csv`` (``dim,stress1,random_stress1``), ``dims.png`` and TensorBoard's image
        ``dims`` and scalars ``dims/stress1`` and ``dims/random_stress1`` (step: the dimension).
        Each fit takes the model's loss, the trainer's ``max_epochs`` and the data options.

        Args:
            model: the model whose settings each dimension's fit takes (its dimension aside).
            datamodule: the data.
            max_dim: the most dimensions fitted.
            replicates: random tables per dimension (smacof's ``randomstress``; at least 5 is its advice).

        """
        from citymap_lightning import dims, output, render
        from citymap_lightning.callbacks import _tensorboard

        check_dims(model.hparams.geometry, max_dim, replicates)
        for callback in self.callbacks:  # the run's config.yaml, as fit writes it
            if isinstance(callback, SaveConfigCallback):
                callback.setup(self, model, stage="dims")
        device = "gpu" if self.strategy.root_device.type == "cuda" else "cpu"
        options = {"max_epochs": self.max_epochs, "logger": False, "enable_checkpointing": False,
                   "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0,
                   "limit_val_batches": 0, "accelerator": device, "devices": 1}  # fmt: skip
        model_options = {k: model.hparams[k] for k in ("loss", "anneal_epochs", "anneal_eps", "transform")}
        data_options = {k: datamodule.hparams[k] for k in dims.DATA_OPTIONS}
        rows = dims.scree(datamodule.table, model_options, data_options, options, max_dim, replicates)
        elbow = dims.elbow(rows)
        log_dir = Path(self.log_dir or self.default_root_dir)
        output.write_table(log_dir / "dims.csv", ["dim", "stress1", "random_stress1"],
                           [[r.dim, f"{r.stress1:.6g}", f"{r.random_stress1:.6g}"] for r in rows])  # fmt: skip
        image = render.to_image(render.draw_scree([r.dim for r in rows], [r.stress1 for r in rows],
                                                  [r.random_stress1 for r in rows], elbow))  # fmt: skip
        output.save_image(log_dir / "dims.png", image)
        for logger in _tensorboard(self):
            logger.experiment.add_image("dims", image[..., :3], global_step=0, dataformats="HWC")
            for r in rows:
                logger.log_metrics({"dims/stress1": r.stress1, "dims/random_stress1": r.random_stress1}, step=r.dim)
            logger.experiment.flush()
        if elbow is not None:
            log.info(f"the elbow is at {elbow} dimensions (stress-1 {rows[elbow - 1].stress1:.4g})")
        return rows


def check_dims(geometry: str, max_dim: int, replicates: int) -> None:
    """Refuse ``dims`` settings that cannot work, in one line."""
    if geometry == "sphere":
        raise ConfigError("dims fits flat maps of 1 to max_dim dimensions: leave out --model.geometry sphere")
    if max_dim < 1 or replicates < 1:
        raise ConfigError(f"dims: max_dim ({max_dim}) and replicates ({replicates}) must be at least 1")


def check_options(config: Namespace, subcommand: str | None) -> None:
    """Refuse settings that cannot work whatever the data, before the data is read (reading can take long).

    The model's own checks (:func:`~citymap_lightning.model.check_settings`, which the model runs
    again), a fit of no epochs, and the ``dims`` settings.
    """
    check_choices(config)
    names = inspect.signature(check_settings).parameters
    model = {k: p.default for k, p in inspect.signature(CityMap.__init__).parameters.items() if k in names}
    model.update((k, v) for k, v in (config.get("model") or {}).items() if k in names)
    check_settings(**model)
    trainer = config.get("trainer") or {}
    if subcommand in ("fit", "dims") and trainer.get("max_epochs") == 0:
        raise ConfigError("trainer.max_epochs is 0: nothing would be fitted; give at least 1")
    every = trainer.get("check_val_every_n_epoch")
    if subcommand == "fit" and every is not None and every < 1:
        raise ConfigError("trainer.check_val_every_n_epoch must be at least 1")
    if subcommand == "dims":
        check_dims(model["geometry"], config.get("max_dim", 5), config.get("replicates", 5))


def check_choices(config: Namespace) -> None:
    """Refuse a registered choice's unknown value (a config file's ``loss: weighted-stress``), naming the closest."""
    data = config.get("data") or {}
    ours = MANIFEST["data_class"]
    if "init_args" in data:
        data = data["init_args"] if ours.endswith(str(data.get("class_path", ours))) else {}
    for key in MANIFEST["choices"]:
        group, name = key.split(".", 1)
        section = data if group == "data" else config.get(group) or {}
        value = section.get(name)
        if isinstance(value, str):
            check_choice(key, value)


class CityMapCLI(LightningCLI):
    """LightningCLI with the data's size linked to the model and every output under the run's root."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's subcommands and ``dims``."""
        return {**LightningCLI.subcommands(), "dims": {"model", "datamodule"}}

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse as LightningCLI does; a refused option becomes one line naming it, with the closest known one."""
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:
            argv = [str(a) for a in (sys.argv[1:] if args is None else args)] if not isinstance(args, dict) else []
            raise ConfigError(explain_parse_error(str(error), argv, self._known_options(argv))) from None

    def _known_options(self, argv: list[str]) -> list[str]:
        """The option names (without ``--``) the parser of the subcommand in ``argv`` takes, the data's included."""
        parsers = getattr(self, "_subcommand_parsers", {})
        chosen = next((parsers[a] for a in argv if a in parsers), None)
        known: list[str] = []
        for parser in [self.parser, *([chosen] if chosen is not None else parsers.values())]:
            for action in parser._actions:
                known += [s.lstrip("-").rstrip("+") for s in action.option_strings if s.startswith("--")]
        known += [f"data.{name}" for name in _parameters(self.datamodule_class)]
        return list(dict.fromkeys(k for k in known if not k.endswith(".help")))

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Link the number of places; make the map renderer and the checkpoints configurable."""
        parser.link_arguments("data.num_places", "model.num_places", apply_on="instantiate")
        parser.add_lightning_class_args(MapRenderer, "map")
        parser.add_lightning_class_args(Checkpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_on_exception": True})

    def instantiate_classes(self) -> None:
        """``predict --ckpt_path CKPT`` takes the model's settings from the checkpoint.

        Its data module reads new places to put on the checkpoint's map when the file names any.
        """
        config = self.config[self.subcommand] if self.subcommand else self.config
        path = config.get("ckpt_path") if self.subcommand == "predict" else None
        if not path or path in ("last", "best"):
            check_options(config, self.subcommand)
            super().instantiate_classes()
            return
        checkpoint = check_checkpoint(Path(path))
        saved = checkpoint.get("hyper_parameters") or {}
        for key, value in saved.items():
            if key != "num_places" and key in config.model:
                config.model[key] = value
        check_options(config, self.subcommand)
        data = config.data.init_args if "init_args" in config.data else config.data  # a subclass is given by class_path
        data.predict_from = str(path)
        super().instantiate_classes()

    def before_instantiate_classes(self) -> None:
        """With ``--trainer.default_root_dir DIR``, put loggers configured with relative folders under DIR."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = config.trainer.get("default_root_dir")
        if not root:
            return
        loggers = config.trainer.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if not isinstance(logger, (Namespace, dict)):
                continue
            init_args = logger.get("init_args")
            if init_args is None or "save_dir" not in init_args:
                continue
            save_dir = init_args["save_dir"]
            if save_dir is None or not Path(save_dir).is_absolute():
                init_args["save_dir"] = str(Path(root) / (save_dir or ""))

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        """Use a per-fit progress bar unless the user disabled the bar or chose another."""
        chosen = list(config.get("callbacks") or []) + list(callbacks)
        if config.get("enable_progress_bar", True) is not False and not any(isinstance(c, ProgressBar) for c in chosen):
            callbacks = [*callbacks, EpochProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def before_fit(self) -> None:
        """Refuse what the table does not allow; resolve ``--ckpt_path last`` and check the checkpoint, before the fit.

        Lightning itself looks for ``last`` in the new run's own (empty) folder and only warns. A
        checkpoint that cannot be resumed is refused here, so no new ``last.ckpt`` is written for it.
        """
        model, table = self.model, self.datamodule.table
        if model.coords.shape[-1] >= table.n and model.hparams.geometry != "sphere":
            raise ConfigError(
                f"model.dim is {model.coords.shape[-1]}, but {table.n} places fit exactly in "
                f"{table.n - 1} dimensions: give a smaller dim"
            )
        problem = model.prepare(table, self.datamodule.solver)  # what no solver can fit, before any file is written
        optimizer = _first_optimizer(model.configure_optimizers())
        if optimizer is not None and optimizer.param_groups[0].get("lr", 1.0) == 0:
            raise ConfigError("optimizer.lr is 0: nothing would move")
        model.solver.check_optimizers(problem, [optimizer] if optimizer is not None else [])
        threads.use_for_fit(table, model.solver, problem.maps)
        _fitting[:] = [self.trainer]
        self._checkpoint(required=False, resume=True, optimizer=optimizer)

    def before_predict(self) -> None:
        """``predict`` draws a fitted map: it needs a checkpoint, checked before anything runs."""
        self._checkpoint(required=True, resume=False)

    def _checkpoint(self, required: bool, resume: bool, optimizer: torch.optim.Optimizer | None = None) -> None:
        config = self.config_init[self.subcommand]
        if not config.get("ckpt_path"):
            if required:
                raise ConfigError(
                    f"{self.subcommand} needs --ckpt_path CKPT (or last): a checkpoint of a fit; without one "
                    "it would draw the random start"
                )
            return
        if config["ckpt_path"] == "last":
            config["ckpt_path"] = str(find_last_checkpoint(self.trainer))
        check_checkpoint(Path(config["ckpt_path"]), self.model, self.datamodule, resume=resume, optimizer=optimizer)

    def after_fit(self) -> None:
        """Print the files the run wrote, as absolute paths."""
        self._print_outputs()

    def after_predict(self) -> None:
        """Print the files prediction wrote."""
        self._print_outputs()

    def after_dims(self) -> None:
        """Print the files dims wrote."""
        self._print_outputs()

    def _print_outputs(self) -> None:
        log_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir).resolve()  # a collective under DDP
        if self.trainer.global_rank != 0:
            return
        files = sorted(p for p in log_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        print(f"Outputs in {log_dir}:")
        for path in files:
            print(f"  {path}")


def _first_optimizer(value: Any) -> torch.optim.Optimizer | None:
    """The first optimiser in what ``configure_optimizers`` returned (an optimiser, a list, a tuple or a dict)."""
    if isinstance(value, torch.optim.Optimizer):
        return value
    if isinstance(value, dict):
        return _first_optimizer(value.get("optimizer"))
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_optimizer(item)
            if found is not None:
                return found
    return None


def cli_kwargs() -> dict[str, Any]:
    """The keyword arguments of :class:`CityMapCLI` that make this package's defaults."""
    default_config = str(packaged_path("configs", DEFAULT_CONFIG))
    return {
        "model_class": CityMap,
        "trainer_class": CityMapTrainer,
        "datamodule_class": DistanceDataModule,
        "subclass_mode_data": True,
        "seed_everything_default": 0,
        "save_config_kwargs": {"overwrite": True},
        "parser_kwargs": {  # no abbreviations: --model.los is refused, never taken for --model.loss
            "exit_on_error": False,
            "allow_abbrev": False,
            **{
                sub: {"default_config_files": [default_config], "exit_on_error": False, "allow_abbrev": False}
                for sub in ("fit", "validate", "test", "predict", "dims")
            },
        },
    }


class _ParserBuilt(Exception):
    """Raised once the CLI's parser is built: :func:`option_manifest` reads it without parsing anything."""

    def __init__(self, cli: CityMapCLI) -> None:
        super().__init__("parser built")
        self.cli = cli


class _ParserOnly(CityMapCLI):
    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        raise _ParserBuilt(self)


def option_manifest() -> dict[str, Any]:
    """What :mod:`citymap_lightning.options` checks before torch is imported, from the real parser and registries.

    ``scripts/make_option_manifest.py`` writes it to :mod:`citymap_lightning.option_manifest`; a test
    fails when the two differ.
    """
    from citymap_lightning import geometry, losses, starts, transforms
    from citymap_lightning.readers.text import FORMATS

    try:
        _ParserOnly(args=[], **cli_kwargs())
    except _ParserBuilt as built:
        cli = built.cli
    else:
        raise RuntimeError("the CLI parsed without building its parser first")

    def option_strings(parser: Any) -> list[str]:
        names = (s.rstrip("+") for action in parser._actions for s in action.option_strings if s.startswith("-"))
        return list(dict.fromkeys(names))

    def links(parser: Any) -> list[str]:
        found = (re.match(r".* --> (\S+)$", s) for action in parser._actions for s in action.option_strings)
        return [f"--{m.group(1)}" for m in found if m]

    subparsers = cli._subcommand_parsers
    each = {name: option_strings(parser) for name, parser in subparsers.items()}
    common = [o for o in next(iter(each.values())) if all(o in options for options in each.values())]
    return {
        "subcommands": list(subparsers),
        "root_options": option_strings(cli.parser),
        "common_options": common,
        "options": {name: [o for o in options if o not in common] for name, options in each.items()},
        "links": sorted({link for parser in subparsers.values() for link in links(parser)}),
        "data_class": f"{DistanceDataModule.__module__}.{DistanceDataModule.__qualname__}",
        "data_options": [name for name in _parameters(DistanceDataModule) if not name.startswith("_")],
        "choices": {
            "model.geometry": list(geometry.GEOMETRIES),
            "model.loss": [losses.AUTO, *losses.LOSSES],
            "model.start": list(starts.STARTS),
            "model.transform": list(transforms.TRANSFORMS),
            "data.format": list(FORMATS),
        },
    }


EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
"""Exit status after an interruption: the shell's 128 + signal number (Ctrl-C, SIGTERM, a closed terminal)."""


class _QuietLightning(logging.Filter):
    """Drop Lightning's advertisement and its report of accelerators a CPU run does not have."""

    NOISE = ("💡 Tip:", "GPU available: False", "TPU available: False", "HPU available: False")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.NOISE)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the program is, so that Lightning's interrupt path writes the results."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []


_fitting: list[Trainer] = []
"""The trainer whose fit is running: SIGTERM then stops it at the end of a step, through Lightning."""


def _on_signal(signum: int, frame: Any) -> None:
    """Raise :class:`Interrupted` once; a second signal while the results are written is ignored.

    During a fit, SIGTERM and SIGHUP raise nothing here: Lightning's own handler (which runs first)
    has marked the trainer, which raises at the end of the step, a safe point (an exception raised
    anywhere could interrupt TensorBoard's writer in the middle of its bookkeeping).
    """
    if _received:
        return
    _received.append(signum)
    if signum != signal.SIGINT and _fitting:
        _fitting[0]._signal_connector.received_sigterm = True  # Lightning's own flag, checked after each step
        return
    raise Interrupted(signum)


def _log_to_console() -> None:
    """Information to stdout, warnings and errors to stderr: an error is the only line on stderr.

    No line shares the progress bar's (:class:`~citymap_lightning.progress.ConsoleHandler`), Lightning's
    own included: it logs through a handler of its own when it finds the root logger without one.
    """
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers = [
            console_handler(h.stream, like=h) if type(h) is logging.StreamHandler else h for h in logger.handlers
        ]
    root = logging.getLogger()
    if root.handlers:  # a notebook or pytest set logging up already
        root.setLevel(min(root.level, logging.INFO) if root.level else logging.INFO)
        return
    out, err = console_handler(sys.stdout), console_handler(sys.stderr)
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[out, err])


def main(args: ArgsType = None) -> None:
    """Run the CLI; errors caused by the input are one line on stderr and a non-zero exit.

    Exit statuses: 0 done; 2 an error the user can fix (one line, ``error: WHAT: problem``, and no
    result files); 130 after Ctrl-C and 143 after SIGTERM (once the fit has started, the map and
    coordinates of where it got to are written first). Only bugs print tracebacks.
    """
    argv = sys.argv[1:] if args is None else args
    if isinstance(argv, (list, tuple)) and list(argv[:1]) == ["compare"]:  # two maps compared: no Trainer
        from citymap_lightning import comparison

        sys.exit(comparison.compare_main(list(argv[1:])))
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    _log_to_console()
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        if not any(isinstance(f, _QuietLightning) for f in logging.getLogger(name).filters):
            logging.getLogger(name).addFilter(_QuietLightning())
    _received.clear()
    _fitting.clear()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        # a signal the caller chose to ignore (a background job's SIGINT, nohup) stays ignored
        handlers = {s: signal.signal(s, _on_signal) for s in EXIT_SIGNAL if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        if isinstance(argv, (list, tuple)):
            options.check_early([str(a) for a in argv])  # what needs no torch: also what python -m checks first
            check_arguments([str(a) for a in argv])
        with threads.kept():  # run in-process (a notebook, the tests), the caller's threads are given back
            threads.use_for(0)  # reading and set-up on one thread; before_fit chooses the fit's (start included)
            CityMapCLI(args=args, **cli_kwargs())
    except (KeyboardInterrupt, SystemExit) as stop:
        if not _received:
            if isinstance(stop, SIGTERMException):  # Lightning's own SIGTERM path, where ours did not run
                _received.append(signal.SIGTERM)
            elif isinstance(stop, SystemExit):
                raise
            else:
                _received.append(signal.SIGINT)  # a KeyboardInterrupt raised without our handler
        signum = _received[0]
        print(f"interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        sys.exit(EXIT_SIGNAL[signum])
    except Exception as error:
        message = user_error(error)
        if message is None:
            raise
        print(f"error: {one_line(message)}", file=sys.stderr)  # one line, whatever the names in it hold
        sys.exit(EXIT_INPUT)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        _end_process_group()


def _end_process_group() -> None:
    """Destroy the process group DDP made, so its gloo threads are joined before the interpreter exits.

    Lightning leaves the group up after the fit; at exit its still-running threads are destroyed
    unjoined and the process aborts ("terminate called without an active exception", exit -6) in
    about one run of three on two CPU processes.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # no barrier: a rank that failed must not wait for the others
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def check_arguments(argv: list[str]) -> None:
    """Refuse input-file options that name no regular file, and checkpoints that are not ones, before they are opened.

    The files are checked by :func:`citymap_lightning.options.checked_paths`; a checkpoint (LightningCLI loads it
    before any hook) is then opened weights-only.
    """
    for option, value in options.checked_paths(argv):
        if option == "--ckpt_path" and value not in ("last", "best"):
            check_checkpoint(Path(value))


def explain_parse_error(message: str, argv: list[str], known: list[str]) -> str:
    """One line for what jsonargparse refused, naming the option as it was written.

    An unknown option gets the closest of the ``known`` option names (a class option's, such as
    ``--data.path``, among them); a value of the wrong type gets what was expected. jsonargparse's
    own message spans many lines (every member of a union); the CLI prints one.
    """
    keys = re.findall(r'Parser key "([^"]+)"', message)
    given = re.search(r"(?:Got value|Given value): (.*)", message)
    value = given.group(1).strip() if given else ""
    if found := re.match(r"unrecognized arguments: (.*)", message, re.S):
        tokens = found.group(1).split()
        option = next((t for t in tokens if t.startswith("-")), None)
        if option is None:
            return f"unexpected argument {tokens[0]!r}: options are written --name value"
        option = option.split("=", 1)[0]
        return unknown_option(option.lstrip("-"), option, known)
    if found := re.search(r"does not accept option '([^']+)'", message):
        return unknown_option(found.group(1), _shown(found.group(1), argv), known)
    if found := re.search(r"argument --?(\S+): expected one argument", message):
        return f"--{found.group(1)}: needs a value"
    if found := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message):
        choices = re.findall(r"'([^']+)'", found.group(2))
        close = difflib.get_close_matches(found.group(1), choices, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"unknown subcommand {found.group(1)!r}: {hint}expected one of {', '.join(choices)}"
    if found := re.search(r'expected "subcommand" to be one of \{(.*)\}', message):
        return f"no subcommand: expected one of {found.group(1).replace(',', ', ')} (such as: fit --help)"
    if not keys:
        return " ".join(message.split())
    key = ".".join(keys)
    cls = _import(found.group(1)) if (found := re.search(r"given class_path '([^']+)'", message)) else None
    if found := re.search(r"Option '([^']+)' is not accepted", message):
        key = f"{keys[0]}.{found.group(1)}"
        if cls in _ABSTRACT:
            return f"{_shown(key, argv)}: name the class first, then its settings (--{keys[0]} Adam --{key} ...)"
        return unknown_option(key, _shown(key, argv), known + [f"{keys[0]}.{name}" for name in _parameters(cls)])
    expected = [t.rsplit(".", 1)[-1] for t in re.findall(r"Expected a <class '([\w.]+)'>", message)]
    expected = list(dict.fromkeys(t for t in expected if t != "NoneType"))
    if expected:
        return f"{_shown(key, argv)}: expected {' or '.join(expected)}, got {value!r}"
    if "Expected a dot import path" in message:
        base = re.search(r"Subtypes: \[<class '([\w.]+)'>", message)
        close = difflib.get_close_matches(value, _subclass_names(base.group(1)) if base else [], n=1)
        hint = f": did you mean {close[0]}?" if close else " (a class name or a full import path)"
        return f"{_shown(key, argv)}: no class {value!r}{hint}"
    return f"{_shown(key, argv)}: {' '.join(message.split())}"


def _shown(key: str, argv: list[str]) -> str:
    """The option as the user wrote it: ``--KEY`` on the command line, else the key of a config file."""
    written = (arg.split("=", 1)[0].rstrip("+").replace(".init_args.", ".") for arg in argv if arg.startswith("--"))
    return f"--{key}" if f"--{key}" in written else f"{key} (in a config file)"


_ABSTRACT = (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)
"""Bases that ``--optimizer.lr`` without ``--optimizer CLASS`` is checked against: no class was named."""


def _parameters(cls: Any) -> list[str]:
    """The keyword parameters of a class's constructor: what ``--KEY.NAME`` may set for a class option."""
    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _import(path: str) -> Any:
    """The object at a dotted import path, or None."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _subclass_names(base_path: str) -> list[str]:
    """Names of the classes beside ``base_path`` in its package that derive from it (``Adam`` for ``Optimizer``)."""
    base = _import(base_path)
    package = _import(base_path.rsplit(".", 2)[0]) if base_path.count(".") >= 2 else None
    if not isinstance(base, type) or package is None:
        return []
    return [name for name, obj in vars(package).items() if isinstance(obj, type) and issubclass(obj, base)]


def user_error(error: BaseException) -> str | None:
    """The one-line message for an error the user caused (input, option, resources), or None for a bug."""
    cause = input_error(error)
    if cause is not None:
        return str(cause)
    chain = _chain(error)
    for e in chain:
        if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e).lower()):
            return ("out of memory: reduce the number of places, or fit by pair batches (--config configs/large.yaml, "
                    "--data.full_batch_limit), or --data.batch_size")  # fmt: skip
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{e.filename or 'output'}: the disk is full: free space or choose --trainer.default_root_dir"
        if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EROFS, errno.EPERM, errno.ENOTDIR) and e.filename:
            return f"{e.filename}: cannot write here ({e.strerror}): choose --trainer.default_root_dir"
        if isinstance(e, RuntimeError) and "cannot be converted to type float without overflow" in str(e):
            return "optimizer: a setting (the learning rate?) is too large for single precision"
        if isinstance(e, ArgumentError):
            return " ".join(str(e).split())
        if isinstance(e, MisconfigurationException):
            return f"trainer: {str(e).splitlines()[0]}"
        if isinstance(e, ValueError) and str(e).startswith("Invalid ") and "optim" in _origin(e):
            return f"optimizer: {e}"
        if isinstance(e, ValueError) and "is not in bounds, numpy accepts" in str(e):
            return f"seed_everything: {e}"
    return None


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and all(error is not s for s in seen):
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _origin(error: BaseException) -> str:
    """The module the exception was raised in (the innermost frame of its traceback)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""


def input_error(error: BaseException) -> CitymapError | None:
    """The :class:`CitymapError` behind an exception, if any.

    jsonargparse wraps what a subclass-mode data module raises while it is instantiated in a
    ``ValueError``; the original stays in the chain of causes.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, CitymapError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
