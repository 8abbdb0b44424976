"""The `zoo` command line: `zoo <command> [flags] [arguments]`.

    zoo list --pretrained                      # the checkpoints, with their top-1
    zoo info hamiltonian-74-cifar10            # one checkpoint's manifest entry
    zoo predict tools/samples                  # classify image files
    zoo evaluate --model hamiltonian-74-cifar10 --limit 1000
    zoo train --model resnet-32-cifar10 --recipe cpu --output_dir runs/r32
    zoo finetune --model hamiltonian-74-cifar10 --dataset my_images/ --output_dir runs/ft
    zoo export --model hamiltonian-74-cifar10 --export_dir exports

`pip install` puts the `zoo` command on the path (setup.cfg's console entry
point); `tools/<command>.py` runs the same command from a checkout. Each
command is a module of this package with `define_flags()` and `main(argv)`;
both reading flags and printing happen there, the work in the library.

Exit status: 0 on success, 1 when the work itself failed (an unreadable image
among those to classify, a diverged training run), 2 for a user error (a
missing file, a bad flag, data that does not fit the model), printed as one
line `<command>: error: ...` instead of a traceback.
"""

import importlib
import os
import re
import sys

# Commands in the order `zoo --help` lists them, with one line each.
COMMANDS = {
    "predict": "Classify image files (or folders of them) with a model.",
    "evaluate": "Accuracy, loss and confusion matrix of a model on a dataset split.",
    "train": "Train a model from scratch or resume an interrupted run.",
    "finetune": "Fine-tune a pretrained model on another dataset.",
    "export": "Export checkpoints as SavedModels for TF Serving and TF Hub.",
    "list": "List the architectures, or the pretrained checkpoints.",
    "info": "Describe a pretrained checkpoint or an architecture.",
}

HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "-?")


# Flags several commands share, defined once. `module` is the command's
# module name, under which --help lists them.
def define_verbose_flag(module):
    from absl import flags

    flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.",
                      module_name=module)


def define_progress_flag(module, default):
    from absl import flags

    flags.DEFINE_integer("progress", default, "Keras progress output: 0 none, 1 a progress "
                         "bar, 2 one line per epoch.", lower_bound=0, upper_bound=2,
                         module_name=module)


def define_skip_unreadable_flag(module):
    from absl import flags

    flags.DEFINE_bool("skip_unreadable", False, "Leave unreadable images of an image folder "
                      "out (counted in a warning) instead of stopping at the first.",
                      module_name=module)


def define_model_args_flag(module, help_text):
    from absl import flags

    # One definition for train, predict and evaluate: absl refuses a flag
    # name defined from two modules in one process (the help test defines all).
    flags.DEFINE_string("model_args", None, help_text, module_name=module)


def parse_model_args(text):
    """The --model_args JSON object, or None when the flag is not given."""
    import json

    from zoo.errors import UserError

    if text is None:
        return None
    try:
        args = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"--model_args is not JSON: {error}") from None
    if not isinstance(args, dict):
        raise UserError(f"--model_args must be a JSON object, got {text!r}.")
    return args


def describe_model_args(model_args):
    """`h=0.3, widths=[...]`: the builder arguments as the tools print them."""
    return ", ".join(f"{k}={v}" for k, v in sorted(model_args.items()))


def usage():
    """`zoo --help`: the commands and where to read more."""
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: zoo <command> [flags] [arguments]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {summary}" for name, summary in COMMANDS.items()]
    lines += ["", "zoo <command> --help describes a command's flags."]
    return "\n".join(lines)


def command_usage(command, prog):
    """A command's --help text: its docstring with `{prog}` filled in, then
    the flags it defines."""
    from absl import flags

    module = importlib.import_module(f"zoo.cli.{command}")
    text = (module.__doc__ or "").replace("{prog}", prog).strip("\n")
    flag_help = flags.FLAGS.module_help(module.__name__)
    # absl heads the list with the module's name, which means nothing here.
    flag_help = re.sub(r"^\s*\S+:\n", "", flag_help)
    return f"{text}\n\nflags:\n{flag_help}\n"


def run(command, argv=None, script=None):
    """Runs one command with `argv` (argv[0] is the program name, as in
    sys.argv) and exits with its status. `script` is the path of the
    tools/ script that runs it from a checkout, if it was that."""
    from absl import app, flags

    from zoo import runtime

    argv = list(sys.argv if argv is None else argv)
    # What --help shows as the command, and what starts an error line.
    prog, name = (f"python {script}", os.path.basename(script)) if script else (
        f"zoo {command}", f"zoo {command}")
    module = importlib.import_module(f"zoo.cli.{command}")
    module.define_flags()
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        sys.stdout.write(command_usage(command, prog))
        sys.exit(0)

    def parse(args):
        try:
            return flags.FLAGS(args)
        except flags.Error as error:
            print(f"{name}: error: {error} (see {name} --help)", file=sys.stderr)
            sys.exit(2)

    app.run(lambda rest: runtime.run_tool(name, module.main, rest),
            argv=[argv[0], *argv[1:]], flags_parser=parse)


def main(argv=None):
    """The console entry point: `zoo <command> ...`."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2:
        print(usage(), file=sys.stderr)
        sys.exit(2)
    if argv[1] in HELP_FLAGS or argv[1] == "help":
        print(usage())
        sys.exit(0)
    if argv[1] == "--version":
        from zoo import __version__

        print(f"zoo {__version__}")
        sys.exit(0)
    command = argv[1]
    if command not in COMMANDS:
        print(f"zoo: error: unknown command {command!r}; the commands are "
              f"{', '.join(COMMANDS)} (zoo --help)", file=sys.stderr)
        sys.exit(2)
    run(command, [argv[0], *argv[2:]])
